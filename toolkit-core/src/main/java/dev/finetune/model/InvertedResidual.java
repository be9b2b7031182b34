package dev.finetune.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.ParameterStore;
import ai.djl.util.PairList;

/**
 * The inverted residual of MobileNetV2/V3 and EfficientNet's MBConv / FusedMBConv: a body ({@code conv} in
 * MobileNetV2, {@code block} in V3 and EfficientNet) plus the input where the shape is kept, with EfficientNet's
 * stochastic depth on the body in training forwards.
 */
public final class InvertedResidual extends TorchModule {
    private final Sequential body;
    private final boolean residual;
    private final StochasticDepth stochasticDepth;

    /**
     * @param bodyName torchvision's attribute name for the body
     * @param body the layers
     * @param residual whether the input is added (stride 1 and equal channels)
     */
    public InvertedResidual(String bodyName, Sequential body, boolean residual) {
        this(bodyName, body, residual, 0);
    }

    /** With {@code StochasticDepth(p, "row")} on the body before the residual add. */
    public InvertedResidual(String bodyName, Sequential body, boolean residual, float stochasticDepth) {
        this.body = child(bodyName, body);
        this.residual = residual;
        this.stochasticDepth = new StochasticDepth(stochasticDepth);
    }

    /** This block's stochastic depth (rate 0 for none). */
    public StochasticDepth stochasticDepth() {
        return stochasticDepth;
    }

    @Override
    protected NDList forwardInternal(
            ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> params) {
        NDArray y = body.forward(ps, inputs, training).singletonOrThrow();
        if (!residual) {
            return new NDList(y);
        }
        // Inference frees the body's output and the dropped-path copy once added (StepScopes; a no-op in training).
        NDArray d = StepScopes.release(y, stochasticDepth.apply(y, this, training));
        NDArray out = d.add(inputs.singletonOrThrow());
        StepScopes.free(d);
        return new NDList(out);
    }

    @Override
    public Shape[] getOutputShapes(Shape[] inputs) {
        return body.getOutputShapes(inputs);
    }

    @Override
    public GraphSink.Value trace(GraphSink g, String prefix, GraphSink.Value x) {
        GraphSink.Value y = traceChild(g, prefix, children.keyAt(0), x);
        return residual ? output(g.op("Add", y.name(), x.name()), x) : y;
    }
}
