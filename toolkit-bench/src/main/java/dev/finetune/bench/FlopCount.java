package dev.finetune.bench;

import ai.djl.nn.Block;
import ai.djl.nn.Parameter;
import dev.finetune.model.BatchNorm2d;
import dev.finetune.model.Conv2d;
import dev.finetune.model.ResNet;
import dev.finetune.model.ResNetArch;
import dev.finetune.policy.FreezePlan;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Predicate;

/**
 * The multiply-accumulates of a {@link ResNet}'s convolutions and its linear head, from the shapes alone, and which of
 * them a backward pass repeats. BatchNorm, ReLU, pooling, the residual adds and the optimizer are left out: they are
 * a few percent of the arithmetic (and memory-bound), so achieved GFLOP/s here means useful conv/linear FLOP/s.
 *
 * <p>A training step costs the forward MACs once, plus for each layer the weight gradient (same MACs as its forward)
 * when its weight trains, plus the input gradient (same MACs again) when anything upstream of the layer trains, so
 * that the gradient must flow through it. Fully trainable that is about 3× the forward (less the stem's input
 * gradient, which is never needed); a frozen backbone adds only the head's weight gradient.
 */
public final class FlopCount {
    private final List<LayerCost> layers;

    private FlopCount(List<LayerCost> layers) {
        this.layers = List.copyOf(layers);
    }

    /**
     * One conv or linear layer.
     *
     * @param module torchvision module name ({@code layer2.0.downsample.0}, {@code fc})
     * @param stage the stage it belongs to ({@link ResNet#stageOf})
     * @param macs multiply-accumulates of its forward, per image
     * @param weightGrad whether backward computes its weight gradient (the weight trains)
     * @param inputGrad whether backward computes its input gradient (something upstream trains)
     */
    public record LayerCost(String module, String stage, long macs, boolean weightGrad, boolean inputGrad) {}

    /**
     * Conv+linear FLOPs per image of one iteration of {@code workload} on ResNet-18 with a 10-class head: the forward
     * for inference, forward plus backward under the workload's freeze policy for a training step; 0 for the loader.
     */
    public static long forWorkload(Workload workload, int size) {
        if (workload == Workload.LOADER) {
            return 0;
        }
        ResNet model = ResNet.create(ResNetArch.RESNET18, WorkloadRunner.CLASSES);
        if (!workload.trains()) {
            return of(model, size, name -> false).forwardFlops();
        }
        FreezePlan plan = workload.policy().plan(FreezePlan.describe(model));
        return of(model, size, plan::isTrainable).trainingFlops();
    }

    /** Counts {@code model} at {@code size}×{@code size} input, trainable = what requires a gradient now. */
    public static FlopCount of(ResNet model, int size) {
        Map<String, Parameter> tensors = model.namedTensors();
        return of(model, size, name -> {
            Parameter p = tensors.get(name);
            return p != null && p.requiresGradient();
        });
    }

    /**
     * Counts {@code model} at {@code size}×{@code size} input with the trainable parameters given by name
     * ({@code layer4.0.conv1.weight}).
     */
    public static FlopCount of(ResNet model, int size, Predicate<String> trainable) {
        Map<String, Block> modules = model.namedModules();
        List<LayerCost> out = new ArrayList<>();
        Walker w = new Walker(model, trainable, out);
        // stem: conv1 + bn1 + relu + maxpool(3, 2, 1)
        long h = w.convBn("conv1", "bn1", size, false);
        boolean grad = w.lastOutputGrad;
        h = (h + 2 - 3) / 2 + 1;
        for (int s = 1; s <= 4; s++) {
            for (int u = 0; modules.containsKey("layer" + s + "." + u); u++) {
                String p = "layer" + s + "." + u + ".";
                long y = h;
                boolean g = grad;
                for (int i = 1; modules.containsKey(p + "conv" + i); i++) {
                    y = w.convBn(p + "conv" + i, p + "bn" + i, y, g);
                    g = w.lastOutputGrad;
                }
                boolean identityGrad = grad;
                if (modules.containsKey(p + "downsample")) {
                    w.convBn(p + "downsample.0", p + "downsample.1", h, grad);
                    identityGrad = w.lastOutputGrad;
                }
                h = y;
                grad = g || identityGrad;
            }
        }
        var fc = model.head();
        boolean fcWeight = trainable.test("fc.weight");
        out.add(new LayerCost("fc", "head", (long) fc.inFeatures() * fc.outFeatures(), fcWeight, grad));
        return new FlopCount(out);
    }

    /** Walks conv+BN pairs, tracking whether the activation depends on a trainable parameter. */
    private static final class Walker {
        private final Map<String, Block> modules;
        private final Predicate<String> trainable;
        private final List<LayerCost> out;
        private final ResNet model;
        private boolean lastOutputGrad;

        Walker(ResNet model, Predicate<String> trainable, List<LayerCost> out) {
            this.model = model;
            this.modules = model.namedModules();
            this.trainable = trainable;
            this.out = out;
        }

        /** Adds one conv; returns its output side. */
        long convBn(String convName, String bnName, long inSide, boolean inputGrad) {
            Conv2d conv = (Conv2d) modules.get(convName);
            if (!(modules.get(bnName) instanceof BatchNorm2d)) {
                throw new IllegalStateException("expected a BatchNorm2d at " + bnName);
            }
            long outSide = (inSide + 2L * conv.padding() - conv.kernel()) / conv.stride() + 1;
            long macs = outSide * outSide * conv.outChannels() * (long) conv.inChannels() * conv.kernel()
                    * conv.kernel() / conv.groups();
            boolean weight = trainable.test(convName + ".weight");
            out.add(new LayerCost(convName, model.stageOf(convName), macs, weight, inputGrad));
            boolean bn = trainable.test(bnName + ".weight") || trainable.test(bnName + ".bias");
            lastOutputGrad = inputGrad || weight || bn;
            return outSide;
        }
    }

    public List<LayerCost> layers() {
        return layers;
    }

    /** Forward multiply-accumulates per image. */
    public long forwardMacs() {
        return layers.stream().mapToLong(LayerCost::macs).sum();
    }

    /** Multiply-accumulates per image of the backward pass (weight and input gradients that actually run). */
    public long backwardMacs() {
        return layers.stream()
                .mapToLong(l -> (l.weightGrad() ? l.macs() : 0) + (l.inputGrad() ? l.macs() : 0))
                .sum();
    }

    /** FLOPs (2 per MAC) per image of a forward only. */
    public long forwardFlops() {
        return 2 * forwardMacs();
    }

    /** FLOPs per image of a training step: forward plus backward. */
    public long trainingFlops() {
        return 2 * (forwardMacs() + backwardMacs());
    }
}
