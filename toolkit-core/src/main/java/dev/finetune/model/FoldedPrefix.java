package dev.finetune.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.nn.Block;
import ai.djl.nn.pooling.Pool;
import dev.finetune.engine.Engines;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.UnaryOperator;

/**
 * Stages {@code [fromStage, toStage)} of a {@link ResNet} (see {@link Network#stageNames()}) with every conv+BN pair
 * folded ({@link FoldedConvBn}) and no autograd: what a frozen prefix costs when it is run as the fixed function it is.
 *
 * <p>The same math as {@code model.forwardStages(ps, x, true, fromStage, toStage)} under no-grad for stages whose
 * convs and BNs are all frozen and in frozen-stats mode (checked at {@link #fold}), within float32 rounding. Two exact
 * rewrites beyond the folding: the stem applies ReLU after the max-pool rather than before (ReLU is monotone, so they
 * commute; the pooled tensor is a quarter of the size), and the activations can be kept in channels-last memory layout
 * ({@link Layout}), which libtorch's oneDNN convolutions and its max-pool kernel handle faster than NCHW on CPU.
 *
 * <p>Channels-last is per stage and can be switched off stage by stage ({@link #useContiguous}): the engine can compute
 * it wrongly on some CPUs. Training never runs this class directly: {@link GuardedPrefix} checks it first.
 */
public final class FoldedPrefix implements AutoCloseable {

    /** Memory layout of the activations inside the folded stages; input and output are always contiguous NCHW. */
    public enum Layout {
        /** Contiguous NCHW throughout, as the unfolded network runs. */
        CONTIGUOUS,
        /** Channels-last (NHWC strides, NCHW shape) throughout. */
        CHANNELS_LAST,
        /** Channels-last for the stem only (conv1 + max-pool), contiguous NCHW from {@code layer1} on. */
        CHANNELS_LAST_STEM
    }

    /** The folded units, one list per stage in {@code [fromStage, toStage)}. */
    /** ResNet's stages (this class folds the ResNet family only). */
    private static final List<String> STAGE_NAMES = List.of("stem", "layer1", "layer2", "layer3", "layer4");

    private final List<List<Unit>> stages;
    private final List<FoldedConvBn> folds;
    /** The same stages as {@link Bf16Prefix}'s program (its op codes; conv {@code c} is {@code folds.get(c)}). */
    private final long[] program;
    private final int fromStage;
    private final int toStage;
    private final Layout layout;
    /** Per stage of {@code [fromStage, toStage)}: runs channels-last. Starts from {@link #layout}; can only turn off. */
    private final boolean[] channelsLast;
    /** The stage of each folded convolution. */
    private final int[] convStage;
    private final NDManager manager;
    /** The same stages as one TorchScript call ({@link #forwardScripted}); loaded on first use. */
    private FoldedResNetScript script;

    private FoldedPrefix(List<List<Unit>> stages, List<FoldedConvBn> folds, long[] program, int[] convStage,
            int fromStage, int toStage, Layout layout, NDManager manager) {
        this.stages = stages;
        this.folds = folds;
        this.program = program;
        this.convStage = convStage;
        this.manager = manager;
        this.fromStage = fromStage;
        this.toStage = toStage;
        this.layout = layout;
        this.channelsLast = new boolean[toStage - fromStage];
        for (int s = fromStage; s < toStage; s++) {
            channelsLast[s - fromStage] = layout == Layout.CHANNELS_LAST
                    || (layout == Layout.CHANNELS_LAST_STEM && s == 0);
        }
    }

    /**
     * How one folded convolution is run: {@link #DIRECT} calls it; a checker ({@link GuardedPrefix}) also runs it on
     * NCHW and compares.
     */
    @FunctionalInterface
    public interface ConvCall {
        /**
         * @param conv the folded convolution
         * @param x its input
         * @param stage the stage it belongs to
         * @param channelsLast whether {@code x} is stored channels-last
         */
        NDArray apply(FoldedConvBn conv, NDArray x, int stage, boolean channelsLast);
    }

    /** Runs the convolution (with the test-only fault of {@link KernelFaults} on channels-last inputs, if set). */
    public static final ConvCall DIRECT = (conv, x, stage, cl) -> {
        return KernelFaults.apply(conv, conv.forward(x), cl);
    };

    /** One step of the prefix: the stem, or one residual unit. */
    private interface Unit {
        NDArray apply(NDArray x, ConvCall call, boolean channelsLast);
    }

    /** Folds the prefix {@code [0, toStage)}: {@code fold(model, 0, toStage, layout, manager)}. */
    public static FoldedPrefix fold(ResNet model, int toStage, Layout layout, NDManager manager) {
        return fold(model, 0, toStage, layout, manager);
    }

    /**
     * Folds stages {@code [fromStage, toStage)}, {@code 0 <= fromStage < toStage <= 5} (stage 5, the head, has no BN).
     * The folded tensors live on sub-managers of {@code manager}.
     *
     * @throws IllegalArgumentException naming the first conv/BN pair that is not a fixed function
     */
    public static FoldedPrefix fold(ResNet model, int fromStage, int toStage, Layout layout, NDManager manager) {
        if (fromStage < 0 || toStage > 5 || fromStage >= toStage) {
            throw new IllegalArgumentException(
                    "need 0 <= fromStage < toStage <= 5 (stem..layer4), found [" + fromStage + ", " + toStage + ")");
        }
        Map<String, Block> modules = model.namedModules();
        List<FoldedConvBn> folds = new ArrayList<>();
        List<List<Unit>> stages = new ArrayList<>();
        List<Long> program = new ArrayList<>();
        List<Integer> convStage = new ArrayList<>();
        try {
            for (int s = fromStage; s < toStage; s++) {
                List<Unit> units = new ArrayList<>();
                if (s == 0) {
                    FoldedConvBn stem = foldPair(modules, "conv1", "bn1", manager, folds);
                    program.addAll(List.of(Bf16Prefix.OP_STEM, (long) folds.size() - 1, (long) stem.stride(),
                            (long) stem.padding()));
                    units.add((x, call, cl) -> Activation.relu(Pool.maxPool2d(
                            call.apply(stem, x, 0, cl), new Shape(3, 3), new Shape(2, 2), new Shape(1, 1), false)));
                } else {
                    for (int u = 0; modules.containsKey("layer" + s + "." + u); u++) {
                        units.add(residualUnit(modules, s, "layer" + s + "." + u + ".", manager, folds, program));
                    }
                }
                stages.add(List.copyOf(units));
                while (convStage.size() < folds.size()) {
                    convStage.add(s);
                }
            }
            return new FoldedPrefix(List.copyOf(stages), folds, program.stream().mapToLong(Long::longValue).toArray(),
                    convStage.stream().mapToInt(Integer::intValue).toArray(), fromStage, toStage, layout, manager);
        } catch (RuntimeException e) {
            folds.forEach(FoldedConvBn::close);
            throw e;
        }
    }

    /**
     * The longest foldable prefix: the largest {@code k <= 5} such that every conv+BN pair of stages {@code [0, k)}
     * is a fixed function ({@link FoldedConvBn#whyNotFoldable}); 0 if the stem is not. Under a freeze policy this is
     * the backward frontier, unless a frozen stage keeps a BN in train mode.
     */
    public static int foldablePrefix(ResNet model) {
        Map<String, Block> modules = model.namedModules();
        int k = 0;
        while (k < 5 && stageFoldable(modules, k)) {
            k++;
        }
        return k;
    }

    private static boolean stageFoldable(Map<String, Block> modules, int stage) {
        List<String[]> pairs = new ArrayList<>();
        if (stage == 0) {
            pairs.add(new String[] {"conv1", "bn1"});
        } else {
            for (int u = 0; modules.containsKey("layer" + stage + "." + u); u++) {
                String p = "layer" + stage + "." + u + ".";
                for (int i = 1; modules.containsKey(p + "conv" + i); i++) {
                    pairs.add(new String[] {p + "conv" + i, p + "bn" + i});
                }
                if (modules.containsKey(p + "downsample")) {
                    pairs.add(new String[] {p + "downsample.0", p + "downsample.1"});
                }
            }
        }
        for (String[] pair : pairs) {
            if (!(modules.get(pair[0]) instanceof Conv2d conv) || !(modules.get(pair[1]) instanceof BatchNorm2d bn)
                    || FoldedConvBn.whyNotFoldable(conv, bn) != null) {
                return false;
            }
        }
        return true;
    }

    /** BasicBlock (conv1, conv2) or Bottleneck (conv1..conv3): relu after all but the last, then add and relu. */
    private static Unit residualUnit(Map<String, Block> modules, int stage, String prefix, NDManager manager,
            List<FoldedConvBn> folds, List<Long> program) {
        List<FoldedConvBn> chain = new ArrayList<>();
        List<Long> code = new ArrayList<>();
        for (int i = 1; modules.containsKey(prefix + "conv" + i); i++) {
            FoldedConvBn f = foldPair(modules, prefix + "conv" + i, prefix + "bn" + i, manager, folds);
            chain.add(f);
            code.addAll(List.of((long) folds.size() - 1, (long) f.stride(), (long) f.padding(), (long) f.groups()));
        }
        FoldedConvBn down = modules.containsKey(prefix + "downsample")
                ? foldPair(modules, prefix + "downsample.0", prefix + "downsample.1", manager, folds)
                : null;
        program.addAll(List.of(Bf16Prefix.OP_UNIT, (long) chain.size(), down == null ? 0L : 1L));
        program.addAll(code);
        if (down != null) {
            program.addAll(List.of((long) folds.size() - 1, (long) down.stride(), (long) down.padding()));
        }
        return (x, call, cl) -> {
            NDArray y = x;
            for (int i = 0; i < chain.size(); i++) {
                y = call.apply(chain.get(i), y, stage, cl);
                if (i < chain.size() - 1) {
                    y = Activation.relu(y);
                }
            }
            NDArray identity = down == null ? x : call.apply(down, x, stage, cl);
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
        FoldedConvBn f = FoldedConvBn.fold(convName, conv, bn, manager);
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

    public Layout layout() {
        return layout;
    }

    /**
     * Runs the folded stages with autograd off on this thread, freeing each unit's intermediates as soon as the next
     * unit's input exists ({@link StepScopes}). Input and output are contiguous NCHW; the output is on {@code input}'s
     * manager.
     */
    public NDArray forward(NDArray input) {
        return forward(input, DIRECT);
    }

    /** {@link #forward(NDArray)} with every folded convolution run through {@code call}. */
    public NDArray forward(NDArray input, ConvCall call) {
        return forward(input, call, false);
    }

    /**
     * {@link #forward(NDArray, ConvCall)}, all stages in contiguous NCHW for this call when {@code contiguousOnly}
     * (small inputs, where channels-last's layout changes cost more than it gains; see {@link GuardedPrefix}).
     */
    public NDArray forward(NDArray input, ConvCall call, boolean contiguousOnly) {
        List<UnaryOperator<NDArray>> steps = new ArrayList<>();
        boolean channelsLast = false;
        for (int i = 0; i < stages.size(); i++) {
            boolean wanted = !contiguousOnly && channelsLastAt(fromStage + i);
            if (wanted != channelsLast) {
                steps.add(wanted ? FoldedPrefix::toChannelsLast : FoldedPrefix::toContiguous);
                channelsLast = wanted;
            }
            boolean cl = wanted;
            for (Unit unit : stages.get(i)) {
                steps.add(x -> unit.apply(x, call, cl));
            }
        }
        if (channelsLast) {
            steps.add(FoldedPrefix::toContiguous);
        }
        try (Engines.NoGrad g = Engines.noGrad()) {
            return StepScopes.run(input, steps);
        }
    }

    /**
     * The same as {@link #forward(NDArray)} — the same convolutions in the same layouts, stage by stage — run as one
     * TorchScript call ({@link FoldedResNetScript}) with ReLU and the residual add in place and every intermediate
     * freed as soon as it is dead: faster and lighter. Unchecked: {@link GuardedPrefix} compares it with the plain
     * network before it uses it.
     */
    public NDArray forwardScripted(NDArray input) {
        return forwardScripted(input, false);
    }

    /** {@link #forwardScripted(NDArray)}, all in contiguous NCHW for this call when {@code contiguousOnly}. */
    public NDArray forwardScripted(NDArray input, boolean contiguousOnly) {
        if (script == null) {
            script = new FoldedResNetScript(this, manager);
        }
        long[] layouts = new long[folds.size()];
        for (int c = 0; c < layouts.length; c++) {
            layouts[c] = !contiguousOnly && channelsLastAt(convStage[c]) ? 1 : 0;
        }
        try (Engines.NoGrad g = Engines.noGrad()) {
            return KernelFaults.applyScripted(folds, layouts, script.run(input, false, layouts));
        }
    }

    /**
     * Runs the folded stages on an input already in this prefix's layout for {@code fromStage}, and leaves the output
     * in the layout of the last stage: the stage-by-stage profile, which must not time the layout conversions.
     */
    public NDArray forwardInLayout(NDArray x) {
        try (Engines.NoGrad g = Engines.noGrad()) {
            for (int i = 0; i < stages.size(); i++) {
                boolean cl = channelsLastAt(fromStage + i);
                for (Unit unit : stages.get(i)) {
                    x = unit.apply(x, DIRECT, cl);
                }
            }
            return x;
        }
    }

    /** Whether stage {@code s} runs channels-last. */
    public boolean channelsLastAt(int s) {
        return s >= fromStage && s < toStage && channelsLast[s - fromStage];
    }

    /** Runs stage {@code s} on contiguous NCHW from now on (a guard found channels-last wrong there). */
    public void useContiguous(int s) {
        channelsLast[s - fromStage] = false;
    }

    /** Whether any stage still runs channels-last. */
    public boolean anyChannelsLast() {
        for (boolean b : channelsLast) {
            if (b) {
                return true;
            }
        }
        return false;
    }

    /** The layout in words: {@code channels-last: stem, layer1; NCHW: layer4}. */
    public String describeLayout() {
        return describeLayout(false);
    }

    /** {@link #describeLayout()} of a call with {@code contiguousOnly}. */
    public String describeLayout(boolean contiguousOnly) {
        List<String> cl = new ArrayList<>();
        List<String> nchw = new ArrayList<>();
        for (int s = fromStage; s < toStage; s++) {
            (!contiguousOnly && channelsLastAt(s) ? cl : nchw).add(STAGE_NAMES.get(s));
        }
        StringBuilder b = new StringBuilder();
        if (!cl.isEmpty()) {
            b.append("channels-last: ").append(String.join(", ", cl));
        }
        if (!nchw.isEmpty()) {
            b.append(b.length() > 0 ? "; " : "").append("NCHW: ").append(String.join(", ", nchw));
        }
        return b.toString();
    }

    /** The stages as {@link Bf16Prefix}'s program; conv {@code c} is {@code convolutions().get(c)}. */
    long[] program() {
        return program.clone();
    }

    /** The folded convolutions, in forward order. */
    public List<FoldedConvBn> convolutions() {
        return List.copyOf(folds);
    }

    /**
     * The same logical NCHW array stored channels-last: permute to NHWC, flatten (a reshape that cannot be a view,
     * so libtorch copies into NHWC order), and permute back to an NCHW view with NHWC strides — libtorch's
     * {@code x.contiguous(memory_format=torch.channels_last)}, which DJL does not expose.
     */
    public static NDArray toChannelsLast(NDArray nchw) {
        Shape s = nchw.getShape();
        return nchw.transpose(0, 2, 3, 1)
                .reshape(s.get(0), s.get(2) * s.get(3) * s.get(1))
                .reshape(s.get(0), s.get(2), s.get(3), s.get(1))
                .transpose(0, 3, 1, 2);
    }

    /** Back to contiguous NCHW storage: flatten (a copy for a channels-last array) and restore the shape. */
    public static NDArray toContiguous(NDArray x) {
        Shape s = x.getShape();
        return x.reshape(s.get(0), -1).reshape(s);
    }

    @Override
    public void close() {
        if (script != null) {
            script.close();
            script = null;
        }
        folds.forEach(FoldedConvBn::close);
    }
}
