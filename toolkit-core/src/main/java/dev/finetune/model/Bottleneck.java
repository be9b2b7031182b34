package dev.finetune.model;

import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.training.ParameterStore;
import ai.djl.util.PairList;

/**
 * torchvision's {@code Bottleneck} (ResNet-50/101/152, V1.5: the stride sits on the 3×3 conv): 1×1 reduce, 3×3,
 * 1×1 expand ×4, with a downsample where the shape changes. ResNeXt and Wide ResNet are the same unit with a grouped
 * 3×3 of width {@code planes × baseWidth / 64 × groups}.
 */
public final class Bottleneck extends TorchModule implements ResidualBlock {
    static final int EXPANSION = 4;

    private final Conv2d conv1;
    private final BatchNorm2d bn1;
    private final Conv2d conv2;
    private final BatchNorm2d bn2;
    private final Conv2d conv3;
    private final BatchNorm2d bn3;
    private final Sequential downsample;

    public Bottleneck(int inPlanes, int planes, int stride) {
        this(inPlanes, planes, stride, 1, 64);
    }

    public Bottleneck(int inPlanes, int planes, int stride, int groups, int baseWidth) {
        int width = (int) (planes * (baseWidth / 64.0)) * groups;
        conv1 = child("conv1", new Conv2d(inPlanes, width, 1, 1, 0));
        bn1 = child("bn1", new BatchNorm2d(width));
        conv2 = child("conv2", new Conv2d(width, width, 3, stride, 1, groups));
        bn2 = child("bn2", new BatchNorm2d(width));
        conv3 = child("conv3", new Conv2d(width, planes * EXPANSION, 1, 1, 0));
        bn3 = child("bn3", new BatchNorm2d(planes * EXPANSION));
        downsample = stride != 1 || inPlanes != planes * EXPANSION
                ? child("downsample", Sequential.downsample(inPlanes, planes * EXPANSION, stride))
                : null;
    }

    @Override
    public int expansion() {
        return EXPANSION;
    }

    @Override
    protected NDList forwardInternal(
            ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> params) {
        // StepScopes.release frees each intermediate once its one consumer has run (inside StepScopes.run or
        // releasing: inference and training forwards; a no-op elsewhere); autograd keeps what it saved alive.
        NDList out = conv1.forward(ps, inputs, training);
        out = StepScopes.release(out, bn1.forward(ps, out, training));
        out = StepScopes.release(out, new NDList(Activation.relu(out.singletonOrThrow())));
        out = StepScopes.release(out, conv2.forward(ps, out, training));
        out = StepScopes.release(out, bn2.forward(ps, out, training));
        out = StepScopes.release(out, new NDList(Activation.relu(out.singletonOrThrow())));
        out = StepScopes.release(out, conv3.forward(ps, out, training));
        out = StepScopes.release(out, bn3.forward(ps, out, training));
        return ResidualBlock.addIdentityRelu(ps, inputs, out, downsample, training);
    }

    @Override
    public Shape[] getOutputShapes(Shape[] inputs) {
        return conv3.getOutputShapes(conv2.getOutputShapes(conv1.getOutputShapes(inputs)));
    }

    @Override
    protected void initializeChildBlocks(NDManager manager, DataType dataType, Shape... inputShapes) {
        conv1.initialize(manager, dataType, inputShapes);
        Shape[] s1 = conv1.getOutputShapes(inputShapes);
        bn1.initialize(manager, dataType, s1);
        conv2.initialize(manager, dataType, s1);
        Shape[] s2 = conv2.getOutputShapes(s1);
        bn2.initialize(manager, dataType, s2);
        conv3.initialize(manager, dataType, s2);
        bn3.initialize(manager, dataType, conv3.getOutputShapes(s2));
        if (downsample != null) {
            downsample.initialize(manager, dataType, inputShapes);
        }
    }

    @Override
    public GraphSink.Value trace(GraphSink g, String prefix, GraphSink.Value x) {
        GraphSink.Value y = Traces.act(g, Act.Kind.RELU, traceChild(g, prefix, "bn1", traceChild(g, prefix, "conv1", x)));
        y = Traces.act(g, Act.Kind.RELU, traceChild(g, prefix, "bn2", traceChild(g, prefix, "conv2", y)));
        y = traceChild(g, prefix, "bn3", traceChild(g, prefix, "conv3", y));
        GraphSink.Value identity = downsample == null ? x : traceChild(g, prefix, "downsample", x);
        return output(g.op("Relu", g.op("Add", y.name(), identity.name())), x);
    }
}
