package dev.finetune.bench;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.nn.Block;
import ai.djl.nn.pooling.Pool;
import dev.finetune.engine.Engines;
import dev.finetune.model.BatchNorm2d;
import dev.finetune.model.Conv2d;
import dev.finetune.model.FoldedConvBn;
import dev.finetune.model.ResNet;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Stages {@code [fromStage, toStage)} of a {@link ResNet} (see {@link ResNet#stageNames()}) with every conv+BN pair
 * folded ({@link FoldedConvBn}) and no autograd: what a frozen prefix costs when it is run as the fixed function it is.
 *
 * <p>A benchmark helper: the same math as {@code model.forwardStages(ps, x, true, fromStage, toStage)} under no-grad
 * for stages whose convs and BNs are all frozen and in frozen-stats mode (checked at {@link #fold}), within float32
 * rounding. Optionally runs in channels-last memory layout ({@link #channelsLast}), which oneDNN convolutions consume
 * without reordering every activation to and from its blocked layout.
 */
public final class FoldedPrefix implements AutoCloseable {
    private final List<Unit> units;
    private final List<FoldedConvBn> folds;
    private final int fromStage;
    private final int toStage;
    private final boolean channelsLast;

    private FoldedPrefix(
            List<Unit> units, List<FoldedConvBn> folds, int fromStage, int toStage, boolean channelsLast) {
        this.units = units;
        this.folds = folds;
        this.fromStage = fromStage;
        this.toStage = toStage;
        this.channelsLast = channelsLast;
    }

    /** One step of the prefix: the stem, or one residual unit. */
    private interface Unit {
        NDArray apply(NDArray x);
    }

    /** Folds the prefix {@code [0, toStage)}: {@code fold(model, 0, toStage, channelsLast, manager)}. */
    public static FoldedPrefix fold(ResNet model, int toStage, boolean channelsLast, NDManager manager) {
        return fold(model, 0, toStage, channelsLast, manager);
    }

    /**
     * Folds stages {@code [fromStage, toStage)}, {@code 0 <= fromStage < toStage <= 5} (stage 5, the head, has no BN).
     * The folded tensors live on sub-managers of {@code manager}.
     *
     * @param channelsLast run in channels-last (NHWC-strided) layout
     * @throws IllegalArgumentException naming the first conv/BN pair that is not a fixed function
     */
    public static FoldedPrefix fold(
            ResNet model, int fromStage, int toStage, boolean channelsLast, NDManager manager) {
        if (fromStage < 0 || toStage > 5 || fromStage >= toStage) {
            throw new IllegalArgumentException(
                    "need 0 <= fromStage < toStage <= 5 (stem..layer4), found [" + fromStage + ", " + toStage + ")");
        }
        Map<String, Block> modules = model.namedModules();
        List<FoldedConvBn> folds = new ArrayList<>();
        List<Unit> units = new ArrayList<>();
        try {
            if (fromStage == 0) {
                FoldedConvBn stem = foldPair(modules, "conv1", "bn1", manager, folds);
                units.add(x -> Pool.maxPool2d(
                        Activation.relu(stem.forward(x)), new Shape(3, 3), new Shape(2, 2), new Shape(1, 1), false));
            }
            for (int s = Math.max(1, fromStage); s < toStage; s++) {
                for (int u = 0; modules.containsKey("layer" + s + "." + u); u++) {
                    units.add(residualUnit(modules, "layer" + s + "." + u + ".", manager, folds));
                }
            }
            return new FoldedPrefix(List.copyOf(units), folds, fromStage, toStage, channelsLast);
        } catch (RuntimeException e) {
            folds.forEach(FoldedConvBn::close);
            throw e;
        }
    }

    /** BasicBlock (conv1, conv2) or Bottleneck (conv1..conv3): relu after all but the last, then add and relu. */
    private static Unit residualUnit(
            Map<String, Block> modules, String prefix, NDManager manager, List<FoldedConvBn> folds) {
        List<FoldedConvBn> chain = new ArrayList<>();
        for (int i = 1; modules.containsKey(prefix + "conv" + i); i++) {
            chain.add(foldPair(modules, prefix + "conv" + i, prefix + "bn" + i, manager, folds));
        }
        FoldedConvBn down = modules.containsKey(prefix + "downsample")
                ? foldPair(modules, prefix + "downsample.0", prefix + "downsample.1", manager, folds)
                : null;
        return x -> {
            NDArray y = x;
            for (int i = 0; i < chain.size(); i++) {
                y = chain.get(i).forward(y);
                if (i < chain.size() - 1) {
                    y = Activation.relu(y);
                }
            }
            NDArray identity = down == null ? x : down.forward(x);
            return Activation.relu(y.add(identity));
        };
    }

    private static FoldedConvBn foldPair(
            Map<String, Block> modules, String convName, String bnName, NDManager manager, List<FoldedConvBn> folds) {
        if (!(modules.get(convName) instanceof Conv2d conv) || !(modules.get(bnName) instanceof BatchNorm2d bn)) {
            throw new IllegalArgumentException("expected a Conv2d " + convName + " and a BatchNorm2d " + bnName);
        }
        String problem = FoldedConvBn.whyNotFoldable(conv, bn);
        if (problem != null) {
            throw new IllegalArgumentException("cannot fold " + convName + " + " + bnName + ": " + problem);
        }
        FoldedConvBn f = FoldedConvBn.fold(conv, bn, manager);
        folds.add(f);
        return f;
    }

    /** The first folded stage: the stage whose input {@link #forward} takes. */
    public int fromStage() {
        return fromStage;
    }

    /** The stage index the output enters at (the argument of {@code forwardStages(ps, out, t, toStage, 6)}). */
    public int toStage() {
        return toStage;
    }

    public boolean channelsLast() {
        return channelsLast;
    }

    /**
     * Runs the folded stages with autograd off on this thread. The output is on {@code input}'s manager, in the
     * standard (contiguous NCHW) layout.
     */
    public NDArray forward(NDArray input) {
        try (Engines.NoGrad g = Engines.noGrad()) {
            NDArray x = channelsLast ? toChannelsLast(input) : input;
            for (Unit unit : units) {
                x = unit.apply(x);
            }
            return channelsLast ? toContiguous(x) : x;
        }
    }

    /**
     * The same logical NCHW array stored channels-last: permute to NHWC, flatten (a reshape that cannot be a view,
     * so libtorch copies into NHWC order), and permute back to an NCHW view with NHWC strides — libtorch's
     * {@code x.contiguous(memory_format=torch.channels_last)}, which DJL does not expose.
     */
    static NDArray toChannelsLast(NDArray nchw) {
        Shape s = nchw.getShape();
        return nchw.transpose(0, 2, 3, 1)
                .reshape(s.get(0), s.get(2) * s.get(3) * s.get(1))
                .reshape(s.get(0), s.get(2), s.get(3), s.get(1))
                .transpose(0, 3, 1, 2);
    }

    /** Back to contiguous NCHW storage: flatten (a copy for a channels-last array) and restore the shape. */
    static NDArray toContiguous(NDArray x) {
        Shape s = x.getShape();
        return x.reshape(s.get(0), -1).reshape(s);
    }

    @Override
    public void close() {
        folds.forEach(FoldedConvBn::close);
    }
}
