package dev.finetune.model;

import ai.djl.ndarray.NDList;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Parameter;
import ai.djl.training.ParameterStore;
import ai.djl.util.PairList;

/** {@code nn.Linear(in, out)} with PyTorch's default initialization. */
public final class Linear extends TorchModule {
    private final int inFeatures;
    private final int outFeatures;
    private final Parameter weight;
    private final Parameter bias;

    public Linear(int inFeatures, int outFeatures) {
        this.inFeatures = inFeatures;
        this.outFeatures = outFeatures;
        weight = param("weight", Parameter.Type.WEIGHT, new Shape(outFeatures, inFeatures), true);
        bias = param("bias", Parameter.Type.BIAS, new Shape(outFeatures), true);
        weight.setInitializer(TorchInit.linearUniform(inFeatures));
        bias.setInitializer(TorchInit.linearUniform(inFeatures));
    }

    /**
     * Switches to {@code normal_(weight, 0, std)} and a zero bias, the initialization torchvision's MobileNet, VGG and
     * EfficientNet give their classifiers when trained from scratch (a new head keeps {@code nn.Linear}'s default).
     */
    public Linear normalInit(float std) {
        weight.setInitializer((manager, shape, dataType) -> manager.randomNormal(0f, std, shape, dataType));
        bias.setInitializer(ai.djl.training.initializer.Initializer.ZEROS);
        return this;
    }

    /** {@code uniform_(weight, -bound, bound)} and a zero bias (EfficientNet's classifier from scratch). */
    public Linear uniformInit(float bound) {
        weight.setInitializer((manager, shape, dataType) -> manager.randomUniform(-bound, bound, shape, dataType));
        bias.setInitializer(ai.djl.training.initializer.Initializer.ZEROS);
        return this;
    }

    /**
     * {@code trunc_normal_(weight, std=std)} and a zero bias: ConvNeXt's initialization. PyTorch truncates at the
     * absolute ±2 (100 standard deviations at 0.02), so a clipped normal draws the same distribution; DJL's
     * {@code truncatedNormal} would truncate at 2 standard deviations instead.
     */
    public Linear truncNormalInit(float std) {
        weight.setInitializer((manager, shape, dataType) ->
                manager.randomNormal(0f, std, shape, dataType).clip(-2, 2));
        if (bias != null) {
            bias.setInitializer(ai.djl.training.initializer.Initializer.ZEROS);
        }
        return this;
    }

    /** {@code nn.Linear}'s default weight with a zero bias (DenseNet's classifier from scratch). */
    public Linear zeroBias() {
        bias.setInitializer(ai.djl.training.initializer.Initializer.ZEROS);
        return this;
    }

    public int inFeatures() {
        return inFeatures;
    }

    public int outFeatures() {
        return outFeatures;
    }

    public Parameter weight() {
        return weight;
    }

    public Parameter bias() {
        return bias;
    }

    @Override
    protected NDList forwardInternal(
            ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> params) {
        var x = inputs.singletonOrThrow();
        var device = x.getDevice();
        return ai.djl.nn.core.Linear.linear(
                x, ps.getValue(weight, device, training), ps.getValue(bias, device, training));
    }

    @Override
    public Shape[] getOutputShapes(Shape[] inputs) {
        // Applies to the last dimension, whatever leads it (ConvNeXt's blocks run it on NHWC maps).
        long[] dims = inputs[0].getShape();
        long[] out = dims.clone();
        out[out.length - 1] = outFeatures;
        return new Shape[] {new Shape(out)};
    }

    @Override
    public String toString() {
        return "Linear(in_features=" + inFeatures + ", out_features=" + outFeatures + ", bias=True)";
    }

    /** {@code Gemm} (transB) on a matrix; on a higher-rank input (ConvNeXt's NHWC maps), MatMul by Wᵀ plus the bias. */
    @Override
    public GraphSink.Value trace(GraphSink g, String prefix, GraphSink.Value x) {
        String w = g.tensor(prefix + "weight");
        String b = g.tensor(prefix + "bias");
        if (x.rank() == 2) {
            return output(g.op("Gemm", java.util.Map.of("transB", 1L), x.name(), w, b), x);
        }
        String wt = g.op("Transpose", java.util.Map.of("perm", new long[] {1, 0}), w);
        return output(g.op("Add", g.op("MatMul", x.name(), wt), b), x);
    }
}
