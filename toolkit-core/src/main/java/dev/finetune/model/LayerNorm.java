package dev.finetune.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Parameter;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.jni.JniUtils;
import ai.djl.training.ParameterStore;
import ai.djl.training.initializer.Initializer;
import ai.djl.util.PairList;

/**
 * {@code nn.LayerNorm(channels, eps)} over the last dimension, or torchvision's {@code LayerNorm2d} over the channels
 * of an NCHW map ({@code channelsFirst}: permute to NHWC, normalize, permute back). A 2-D input {@code (N, C)} is
 * normalized over C either way (ConvNeXt's classifier norm sees the pooled features).
 *
 * <p>LayerNorm keeps no running statistics: the {@code batchnorm} modes of a freeze policy do not apply to it, and
 * freezing it means freezing its affine parameters only.
 */
public final class LayerNorm extends TorchModule {
    private final int channels;
    private final double eps;
    private final boolean channelsFirst;
    private final Parameter weight;
    private final Parameter bias;

    public LayerNorm(int channels, double eps, boolean channelsFirst) {
        this.channels = channels;
        this.eps = eps;
        this.channelsFirst = channelsFirst;
        weight = param("weight", Parameter.Type.GAMMA, new Shape(channels), true);
        bias = param("bias", Parameter.Type.BETA, new Shape(channels), true);
        weight.setInitializer(Initializer.ONES);
        bias.setInitializer(Initializer.ZEROS);
    }

    public int channels() {
        return channels;
    }

    @Override
    protected NDList forwardInternal(
            ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> params) {
        NDArray x = inputs.singletonOrThrow();
        var device = x.getDevice();
        PtNDArray w = (PtNDArray) ps.getValue(weight, device, training);
        PtNDArray b = (PtNDArray) ps.getValue(bias, device, training);
        boolean permute = channelsFirst && x.getShape().dimension() == 4;
        if (permute) {
            x = x.transpose(0, 2, 3, 1);
        }
        // libtorch's layer_norm with the double eps torch passes (DJL's wrapper narrows it to float).
        NDArray y = JniUtils.layerNorm((PtNDArray) x, new Shape(channels), w, b, eps);
        return new NDList(permute ? y.transpose(0, 3, 1, 2) : y);
    }

    @Override
    public Shape[] getOutputShapes(Shape[] inputs) {
        return inputs;
    }

    @Override
    public String toString() {
        return (channelsFirst ? "LayerNorm2d(" : "LayerNorm(") + channels + ", eps=" + eps + ")";
    }

    /** opset 17's LayerNormalization over the last axis; LayerNorm2d on a (N, C, H, W) map goes through NHWC. */
    @Override
    public GraphSink.Value trace(GraphSink g, String prefix, GraphSink.Value x) {
        boolean permute = channelsFirst && x.rank() == 4;
        String in = permute ? g.op("Transpose", java.util.Map.of("perm", new long[] {0, 2, 3, 1}), x.name()) : x.name();
        String y = g.op("LayerNormalization", java.util.Map.of("axis", -1L, "epsilon", (float) eps), in,
                g.tensor(prefix + "weight"), g.tensor(prefix + "bias"));
        return output(permute ? g.op("Transpose", java.util.Map.of("perm", new long[] {0, 3, 1, 2}), y) : y, x);
    }
}
