package dev.finetune.model;

import ai.djl.ndarray.NDList;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.norm.Dropout;
import ai.djl.training.ParameterStore;
import ai.djl.util.PairList;

/** {@code nn.Dropout(p)} as a child module: active in training forwards only. */
public final class DropoutLayer extends TorchModule {
    private volatile float p;

    public DropoutLayer(float p) {
        this.p = p;
    }

    public float p() {
        return p;
    }

    /** Changes the rate (tests compare train-mode forwards with dropout off). */
    public void setP(float p) {
        if (p < 0 || p >= 1) {
            throw new IllegalArgumentException("dropout must be in [0, 1), found " + p);
        }
        this.p = p;
    }

    @Override
    protected NDList forwardInternal(
            ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> params) {
        return training && p > 0 ? Dropout.dropout(inputs.singletonOrThrow(), p, true) : inputs;
    }

    @Override
    public Shape[] getOutputShapes(Shape[] inputs) {
        return inputs;
    }

    @Override
    public GraphSink.Value trace(GraphSink g, String prefix, GraphSink.Value x) {
        return x;
    }
}
