package dev.finetune.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.pooling.Pool;
import ai.djl.training.ParameterStore;
import ai.djl.util.PairList;

/**
 * torchvision's {@code ops.SqueezeExcitation}: global average pool, {@code fc1} (1×1 conv with bias), activation,
 * {@code fc2}, scale activation, times the input. MobileNetV3 uses ReLU / Hardsigmoid, EfficientNet SiLU / Sigmoid.
 */
public final class SqueezeExcitation extends TorchModule {
    private final Conv2d fc1;
    private final Conv2d fc2;
    private final Act.Kind activation;
    private final Act.Kind scaleActivation;

    public SqueezeExcitation(int channels, int squeeze, Act.Kind activation, Act.Kind scaleActivation) {
        fc1 = child("fc1", new Conv2d(channels, squeeze, 1, 1, 0, 1, true));
        fc2 = child("fc2", new Conv2d(squeeze, channels, 1, 1, 0, 1, true));
        this.activation = activation;
        this.scaleActivation = scaleActivation;
    }

    @Override
    protected NDList forwardInternal(
            ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> params) {
        NDArray x = inputs.singletonOrThrow();
        Shape s = x.getShape();
        NDArray scale = Pool.globalAvgPool2d(x).reshape(s.get(0), s.get(1), 1, 1);
        scale = fc1.forward(ps, new NDList(scale), training).singletonOrThrow();
        scale = activation.apply(scale);
        scale = fc2.forward(ps, new NDList(scale), training).singletonOrThrow();
        return new NDList(scaleActivation.apply(scale).mul(x));
    }

    @Override
    public Shape[] getOutputShapes(Shape[] inputs) {
        return inputs;
    }

    @Override
    protected void initializeChildBlocks(NDManager manager, DataType dataType, Shape... inputShapes) {
        Shape pooled = new Shape(inputShapes[0].get(0), inputShapes[0].get(1), 1, 1);
        fc1.initialize(manager, dataType, pooled);
        fc2.initialize(manager, dataType, fc1.getOutputShapes(new Shape[] {pooled}));
    }

    @Override
    public GraphSink.Value trace(GraphSink g, String prefix, GraphSink.Value x) {
        Shape s = x.shape();
        GraphSink.Value scale = new GraphSink.Value(g.op("GlobalAveragePool", x.name()),
                new Shape(s.get(0), s.get(1), 1, 1));
        scale = Traces.act(g, activation, traceChild(g, prefix, "fc1", scale));
        scale = Traces.act(g, scaleActivation, traceChild(g, prefix, "fc2", scale));
        return output(g.op("Mul", scale.name(), x.name()), x);
    }
}
