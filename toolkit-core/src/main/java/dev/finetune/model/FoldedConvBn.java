package dev.finetune.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Parameter;

/**
 * A frozen {@link Conv2d} followed by a {@link BatchNorm2d} in {@link BnMode#FROZEN_STATS} as one convolution with a
 * bias. With every parameter frozen and the statistics fixed, {@code bn(conv(x))} is the affine map
 * {@code conv(x, w') + b'} where, per output channel, {@code s = γ / sqrt(running_var + eps)}, {@code w' = w·s} and
 * {@code b' = β − running_mean·s} (plus {@code conv_bias·s} for a conv with a bias, as VGG's): one pass over the activation instead of two, and no BN kernel at all.
 *
 * <p>The folded tensors are computed once, in float64, from the live parameters when {@link #fold} is called; they are
 * a snapshot. Fold again after anything changes the pair (loading weights, unfreezing, switching the BN to
 * {@link BnMode#TRAIN}) — {@link #fold} refuses pairs that could change under training, so a stale fold can only come
 * from a caller that changed the pair itself.
 */
public final class FoldedConvBn implements AutoCloseable {
    /** {@link BatchNorm2d}'s eps: torchvision's {@code nn.BatchNorm2d} default. */

    private final NDManager manager;
    private final String name;
    private final NDArray weight;
    private final NDArray bias;
    private final int inChannels;
    private final int outChannels;
    private final int kernel;
    private final int stride;
    private final int padding;
    private final int groups;

    private FoldedConvBn(NDManager manager, String name, Conv2d conv, NDArray weight, NDArray bias) {
        this.manager = manager;
        this.name = name;
        this.weight = weight;
        this.bias = bias;
        this.inChannels = conv.inChannels();
        this.outChannels = conv.outChannels();
        this.kernel = conv.kernel();
        this.stride = conv.stride();
        this.padding = conv.padding();
        this.groups = conv.groups();
    }

    /**
     * Why {@code conv}+{@code bn} cannot be folded, or null if it can: every parameter must be frozen (no
     * {@code requires_grad}) and the BN must keep its running statistics.
     */
    public static String whyNotFoldable(Conv2d conv, BatchNorm2d bn) {
        if (conv.outChannels() != bn.channels()) {
            return "the BN has " + bn.channels() + " channels but the conv produces " + conv.outChannels();
        }
        if (conv.bias() != null && conv.bias().requiresGradient()) {
            return "the conv bias trains";
        }
        if (bn.mode() != BnMode.FROZEN_STATS) {
            return "the BN is in " + bn.mode() + " mode (batch statistics); only FROZEN_STATS is a fixed function";
        }
        if (conv.weight().requiresGradient()) {
            return "the conv weight trains";
        }
        if (bn.weight().requiresGradient() || bn.bias().requiresGradient()) {
            return "the BN affine parameters train";
        }
        return null;
    }

    /**
     * Folds {@code bn} into {@code conv}. The folded arrays live on a new sub-manager of {@code parent}, released by
     * {@link #close()}.
     *
     * @throws IllegalArgumentException if the pair is not a fixed function ({@link #whyNotFoldable})
     */
    public static FoldedConvBn fold(Conv2d conv, BatchNorm2d bn, NDManager parent) {
        return fold(conv.toString(), conv, bn, parent);
    }

    /** {@link #fold(Conv2d, BatchNorm2d, NDManager)} with the conv's module name, for reports ({@code layer4.0.conv1}). */
    public static FoldedConvBn fold(String name, Conv2d conv, BatchNorm2d bn, NDManager parent) {
        String problem = whyNotFoldable(conv, bn);
        if (problem != null) {
            throw new IllegalArgumentException("cannot fold " + conv + " + " + bn + ": " + problem);
        }
        NDManager manager = parent.newSubManager();
        try (NDManager scratch = manager.newSubManager()) {
            NDArray gamma = float64(bn.weight(), scratch);
            NDArray beta = float64(bn.bias(), scratch);
            NDArray mean = float64(bn.runningMean(), scratch);
            NDArray var = float64(bn.runningVar(), scratch);
            // The eps as the decimal torch was given (1e-5), not its float rounding.
            double eps = Double.parseDouble(Float.toString(bn.eps()));
            NDArray scale = gamma.div(var.add(eps).sqrt());
            NDArray shift = beta.sub(mean.mul(scale));
            if (conv.bias() != null) {
                shift = shift.add(float64(conv.bias(), scratch).mul(scale));
            }
            NDArray weight = foldedWeight(conv.weight().getArray(), scale, scratch);
            NDArray bias = shift.toType(DataType.FLOAT32, true);
            weight.attach(manager);
            bias.attach(manager);
            return new FoldedConvBn(manager, name, conv, weight, bias);
        } catch (RuntimeException | Error e) {
            manager.close();
            throw e;
        }
    }

    /** Float64 scratch per slice of output channels: about this many bytes at a time. */
    private static final long SLICE_BYTES = 1L << 20;

    /**
     * {@code w·s} per output channel, computed in float64 and rounded once to float32, a slice of output channels at a
     * time: each slice's float64 copies are freed before the next, so folding a 512×512×3×3 convolution needs about
     * 1 MiB of scratch instead of two 19 MB float64 copies of the whole weight, which malloc kept resident after the
     * fold. Element for element the same arithmetic as one pass, so the same result.
     */
    private static NDArray foldedWeight(NDArray w, NDArray scale, NDManager scratch) {
        long out = w.getShape().get(0);
        long perChannel = w.getShape().size() / out;
        long rows = Math.max(1, SLICE_BYTES / (perChannel * Double.BYTES));
        NDList slices = new NDList();
        for (long from = 0; from < out; from += rows) {
            long to = Math.min(out, from + rows);
            try (NDManager slice = scratch.newSubManager()) {
                NDArray part = w.get(from + ":" + to);
                part.attach(slice);
                NDArray w64 = part.toType(DataType.FLOAT64, true);
                NDArray s = scale.get(from + ":" + to).reshape(new Shape(to - from, 1, 1, 1));
                s.attach(slice);
                NDArray product = w64.mul(s);
                NDArray rounded = product.toType(DataType.FLOAT32, true);
                rounded.attach(scratch);
                slices.add(rounded);
            }
        }
        return slices.size() == 1 ? slices.head() : NDArrays.concat(slices, 0);
    }

    private static NDArray float64(Parameter p, NDManager scratch) {
        NDArray copy = p.getArray().toType(DataType.FLOAT64, true);
        copy.attach(scratch);
        return copy;
    }

    /**
     * {@code bn(conv(x))} in one convolution. The result lives on {@code x}'s manager. Builds no autograd graph through
     * the folded tensors (they never require gradients); call under {@code Engines.noGrad()} to record nothing at all.
     */
    public NDArray forward(NDArray x) {
        return ai.djl.nn.convolutional.Conv2d.conv2d(
                        x, weight, bias, new Shape(stride, stride), new Shape(padding, padding), new Shape(1, 1), groups)
                .singletonOrThrow();
    }

    /** Test hook: the folded bias, to simulate a wrong kernel. */
    NDArray biasForTest() {
        return bias;
    }

    /** The conv's module name ({@code layer4.0.downsample.0}). */
    public String name() {
        return name;
    }

    /** The convolution's shape, as a report reads it: {@code 1x1 stride 2, 256->512}. */
    public String describeShape() {
        return kernel + "x" + kernel + " stride " + stride + " padding " + padding + ", " + inChannels + "->"
                + outChannels + (groups == 1 ? "" : " groups " + groups);
    }

    public int inChannels() {
        return inChannels;
    }

    public int outChannels() {
        return outChannels;
    }

    public int kernel() {
        return kernel;
    }

    /** The folded weight {@code w·s}, shape {@code (out, in, k, k)}. */
    public NDArray weight() {
        return weight;
    }

    /** The folded bias {@code β − running_mean·s}, shape {@code (out)}. */
    public NDArray bias() {
        return bias;
    }

    public int stride() {
        return stride;
    }

    public int groups() {
        return groups;
    }

    public int padding() {
        return padding;
    }

    @Override
    public void close() {
        manager.close();
    }
}
