package dev.finetune.model;

import ai.djl.ndarray.NDList;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.training.ParameterStore;
import ai.djl.util.PairList;

/**
 * torchvision's {@code BasicBlock} (ResNet-18/34): conv3x3-bn-relu-conv3x3-bn, plus the identity, or a
 * {@code downsample} (1×1 conv stride s + bn) only where the shape changes.
 */
public final class BasicBlock extends TorchModule implements ResidualBlock {
    static final int EXPANSION = 1;

    private final Conv2d conv1;
    private final BatchNorm2d bn1;
    private final Conv2d conv2;
    private final BatchNorm2d bn2;
    private final Sequential downsample;

    public BasicBlock(int inPlanes, int planes, int stride) {
        conv1 = child("conv1", new Conv2d(inPlanes, planes, 3, stride, 1));
        bn1 = child("bn1", new BatchNorm2d(planes));
        conv2 = child("conv2", new Conv2d(planes, planes, 3, 1, 1));
        bn2 = child("bn2", new BatchNorm2d(planes));
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
        return ResidualBlock.addIdentityRelu(ps, inputs, out, downsample, training);
    }

    @Override
    public Shape[] getOutputShapes(Shape[] inputs) {
        return conv2.getOutputShapes(conv1.getOutputShapes(inputs));
    }

    @Override
    protected void initializeChildBlocks(
            ai.djl.ndarray.NDManager manager, ai.djl.ndarray.types.DataType dataType, Shape... inputShapes) {
        // Children are not a chain (downsample branches from the input): give each its real input shape.
        conv1.initialize(manager, dataType, inputShapes);
        Shape[] mid = conv1.getOutputShapes(inputShapes);
        bn1.initialize(manager, dataType, mid);
        conv2.initialize(manager, dataType, mid);
        bn2.initialize(manager, dataType, conv2.getOutputShapes(mid));
        if (downsample != null) {
            downsample.initialize(manager, dataType, inputShapes);
        }
    }

    @Override
    public GraphSink.Value trace(GraphSink g, String prefix, GraphSink.Value x) {
        GraphSink.Value y = traceChild(g, prefix, "bn1", traceChild(g, prefix, "conv1", x));
        y = Traces.act(g, Act.Kind.RELU, y);
        y = traceChild(g, prefix, "bn2", traceChild(g, prefix, "conv2", y));
        GraphSink.Value identity = downsample == null ? x : traceChild(g, prefix, "downsample", x);
        return output(g.op("Relu", g.op("Add", y.name(), identity.name())), x);
    }
}
