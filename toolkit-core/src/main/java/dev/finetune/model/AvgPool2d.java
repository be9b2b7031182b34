package dev.finetune.model;

import ai.djl.ndarray.NDList;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.pooling.Pool;
import ai.djl.training.ParameterStore;
import ai.djl.util.PairList;

/** {@code nn.AvgPool2d(kernel, stride)} (no padding, floor mode) as a child module. */
public final class AvgPool2d extends TorchModule {
    private final int kernel;
    private final int stride;

    public AvgPool2d(int kernel, int stride) {
        this.kernel = kernel;
        this.stride = stride;
    }

    @Override
    protected NDList forwardInternal(
            ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> params) {
        return new NDList(Pool.avgPool2d(inputs.singletonOrThrow(), new Shape(kernel, kernel),
                new Shape(stride, stride), new Shape(0, 0), false, true));
    }

    @Override
    public Shape[] getOutputShapes(Shape[] inputs) {
        Shape s = inputs[0];
        return new Shape[] {new Shape(s.get(0), s.get(1), (s.get(2) - kernel) / stride + 1,
                (s.get(3) - kernel) / stride + 1)};
    }

    @Override
    public GraphSink.Value trace(GraphSink g, String prefix, GraphSink.Value x) {
        return output(g.op("AveragePool", Traces.window(kernel, stride, 0), x.name()), x);
    }
}
