package dev.finetune.model;

import ai.djl.ndarray.NDList;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Parameter;
import ai.djl.training.ParameterStore;
import ai.djl.util.PairList;

/** {@code nn.Conv2d(in, out, kernel, stride, padding, groups=g, bias=False)}: square kernels, no dilation. */
public final class Conv2d extends TorchModule {
    private final Parameter weight;
    private final int inChannels;
    private final int outChannels;
    private final int kernel;
    private final int stride;
    private final int padding;
    private final int groups;
    private final Parameter bias;

    public Conv2d(int inChannels, int outChannels, int kernel, int stride, int padding) {
        this(inChannels, outChannels, kernel, stride, padding, 1);
    }

    /** A grouped convolution ({@code groups == inChannels} is depthwise); both channel counts divide by groups. */
    public Conv2d(int inChannels, int outChannels, int kernel, int stride, int padding, int groups) {
        this(inChannels, outChannels, kernel, stride, padding, groups, false);
    }

    /**
     * With {@code bias=True} when {@code bias}: torchvision's CNNs initialize it to zero (VGG, the
     * squeeze-and-excitation convs).
     */
    public Conv2d(int inChannels, int outChannels, int kernel, int stride, int padding, int groups, boolean bias) {
        if (groups < 1 || inChannels % groups != 0 || outChannels % groups != 0) {
            throw new IllegalArgumentException(
                    "groups " + groups + " must divide in " + inChannels + " and out " + outChannels);
        }
        this.groups = groups;
        this.inChannels = inChannels;
        this.outChannels = outChannels;
        this.kernel = kernel;
        this.stride = stride;
        this.padding = padding;
        weight = param("weight", Parameter.Type.WEIGHT, new Shape(outChannels, inChannels / groups, kernel, kernel), true);
        weight.setInitializer(TorchInit.kaimingNormalFanOut());
        if (bias) {
            this.bias = param("bias", Parameter.Type.BIAS, new Shape(outChannels), true);
            this.bias.setInitializer(ai.djl.training.initializer.Initializer.ZEROS);
        } else {
            this.bias = null;
        }
    }

    /**
     * {@code trunc_normal_(weight, std=std)} and a zero bias: ConvNeXt's initialization. PyTorch truncates at the
     * absolute ±2 (100 standard deviations at 0.02), so a clipped normal draws the same distribution; DJL's
     * {@code truncatedNormal} would truncate at 2 standard deviations instead.
     */
    public Conv2d truncNormalInit(float std) {
        weight.setInitializer((manager, shape, dataType) ->
                manager.randomNormal(0f, std, shape, dataType).clip(-2, 2));
        if (bias != null) {
            bias.setInitializer(ai.djl.training.initializer.Initializer.ZEROS);
        }
        return this;
    }

    /** {@code kaiming_normal_(weight)} with its defaults (fan_in, gain sqrt 2): DenseNet's initialization. */
    public Conv2d kaimingFanInInit() {
        weight.setInitializer((manager, shape, dataType) -> manager.randomNormal(0f,
                (float) Math.sqrt(2.0 / (shape.get(1) * shape.get(2) * shape.get(3))), shape, dataType));
        return this;
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

    public int groups() {
        return groups;
    }

    public Parameter weight() {
        return weight;
    }

    /** The bias, or null for {@code bias=False}. */
    public Parameter bias() {
        return bias;
    }

    @Override
    protected NDList forwardInternal(
            ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> params) {
        var x = inputs.singletonOrThrow();
        var w = ps.getValue(weight, x.getDevice(), training);
        var b = bias == null ? null : ps.getValue(bias, x.getDevice(), training);
        return ai.djl.nn.convolutional.Conv2d.conv2d(
                x, w, b, new Shape(stride, stride), new Shape(padding, padding), new Shape(1, 1), groups);
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
                "Conv2d(%d, %d, kernel_size=(%d, %d), stride=(%d, %d), padding=(%d, %d)%s%s)",
                inChannels, outChannels, kernel, kernel, stride, stride, padding, padding,
                groups == 1 ? "" : ", groups=" + groups, bias == null ? ", bias=False" : "");
    }

    @Override
    public GraphSink.Value trace(GraphSink g, String prefix, GraphSink.Value x) {
        var attrs = new java.util.HashMap<String, Object>(Traces.window(kernel, stride, padding));
        attrs.put("group", (long) groups);
        attrs.put("dilations", new long[] {1, 1});
        String w = g.tensor(prefix + "weight");
        String y = bias == null ? g.op("Conv", attrs, x.name(), w)
                : g.op("Conv", attrs, x.name(), w, g.tensor(prefix + "bias"));
        return output(y, x);
    }
}
