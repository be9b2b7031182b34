package dev.finetune.model;

import ai.djl.ndarray.NDList;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Parameter;
import ai.djl.training.ParameterStore;
import ai.djl.util.PairList;

/** {@code nn.Conv2d(in, out, kernel, stride, padding, bias=False)}: square kernels, no groups or dilation. */
public final class Conv2d extends TorchModule {
    private final Parameter weight;
    private final int inChannels;
    private final int outChannels;
    private final int kernel;
    private final int stride;
    private final int padding;

    public Conv2d(int inChannels, int outChannels, int kernel, int stride, int padding) {
        this.inChannels = inChannels;
        this.outChannels = outChannels;
        this.kernel = kernel;
        this.stride = stride;
        this.padding = padding;
        weight = param("weight", Parameter.Type.WEIGHT, new Shape(outChannels, inChannels, kernel, kernel), true);
        weight.setInitializer(TorchInit.kaimingNormalFanOut());
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

    public int stride() {
        return stride;
    }

    public int padding() {
        return padding;
    }

    public Parameter weight() {
        return weight;
    }

    @Override
    protected NDList forwardInternal(
            ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> params) {
        var x = inputs.singletonOrThrow();
        var w = ps.getValue(weight, x.getDevice(), training);
        return ai.djl.nn.convolutional.Conv2d.conv2d(
                x, w, null, new Shape(stride, stride), new Shape(padding, padding), new Shape(1, 1), 1);
    }

    @Override
    public Shape[] getOutputShapes(Shape[] inputs) {
        Shape s = inputs[0];
        long h = (s.get(2) + 2L * padding - kernel) / stride + 1;
        long w = (s.get(3) + 2L * padding - kernel) / stride + 1;
        return new Shape[] {new Shape(s.get(0), outChannels, h, w)};
    }

    @Override
    public String toString() {
        return String.format(
                "Conv2d(%d, %d, kernel_size=(%d, %d), stride=(%d, %d), padding=(%d, %d), bias=False)",
                inChannels, outChannels, kernel, kernel, stride, stride, padding, padding);
    }
}
