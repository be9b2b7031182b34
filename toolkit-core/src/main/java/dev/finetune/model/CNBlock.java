package dev.finetune.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Parameter;
import ai.djl.training.ParameterStore;
import ai.djl.util.PairList;

/**
 * torchvision's ConvNeXt {@code CNBlock}: {@code block} = 7×7 depthwise conv (bias), permute to NHWC, LayerNorm,
 * Linear 4×, GELU, Linear back, permute to NCHW; times the per-channel {@code layer_scale}; stochastic depth; plus the
 * input.
 */
public final class CNBlock extends TorchModule {
    private final Parameter layerScale;
    private final Sequential block;
    private final StochasticDepth stochasticDepth;

    public CNBlock(int dim, float layerScale, float stochasticDepth) {
        // Registered first, as PyTorch's state_dict puts a module's own parameters before its children's.
        this.layerScale = param("layer_scale", Parameter.Type.WEIGHT, new Shape(dim, 1, 1), true);
        this.layerScale.setInitializer((manager, shape, dataType) -> manager.full(shape, layerScale, dataType));
        block = child("block", new Sequential(
                new Conv2d(dim, dim, 7, 1, 3, dim, true).truncNormalInit(0.02f),
                Reshape.permute(0, 2, 3, 1),
                new LayerNorm(dim, 1e-6, false),
                new Linear(dim, 4 * dim).truncNormalInit(0.02f),
                new Act(Act.Kind.GELU),
                new Linear(4 * dim, dim).truncNormalInit(0.02f),
                Reshape.permute(0, 3, 1, 2)));
        this.stochasticDepth = new StochasticDepth(stochasticDepth);
    }

    /** This block's stochastic depth. */
    public StochasticDepth stochasticDepth() {
        return stochasticDepth;
    }

    @Override
    protected NDList forwardInternal(
            ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> params) {
        NDArray x = inputs.singletonOrThrow();
        // The activation on the left: a DJL result belongs to its left operand's manager, and the layer scale's is
        // the model's, which lives as long as the model (an activation of every step stayed resident: 150 MB a step
        // at batch 64, 32x32).
        NDArray b = block.forward(ps, inputs, training).singletonOrThrow();
        NDArray y = StepScopes.release(b, b.mul(ps.getValue(layerScale, x.getDevice(), training)));
        // Inference frees each intermediate once consumed (StepScopes; a no-op in training).
        NDArray d = StepScopes.release(y, stochasticDepth.apply(y, this, training));
        NDArray out = d.add(x);
        StepScopes.free(d);
        return new NDList(out);
    }

    @Override
    public Shape[] getOutputShapes(Shape[] inputs) {
        return inputs;
    }

    @Override
    public GraphSink.Value trace(GraphSink g, String prefix, GraphSink.Value x) {
        GraphSink.Value y = traceChild(g, prefix, "block", x);
        String scaled = g.op("Mul", g.tensor(prefix + "layer_scale"), y.name());
        return output(g.op("Add", scaled, x.name()), x);
    }
}
