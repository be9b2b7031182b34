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
    private volatile float stochasticDepth;

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
        this.stochasticDepth = stochasticDepth;
    }

    /** The stochastic-depth rate of this block (0 for none). */
    public float stochasticDepth() {
        return stochasticDepth;
    }

    /** Changes the stochastic-depth rate (tests compare train-mode forwards with it off). */
    public void setStochasticDepth(float p) {
        if (p < 0 || p >= 1) {
            throw new IllegalArgumentException("stochastic depth must be in [0, 1), found " + p);
        }
        stochasticDepth = p;
    }

    @Override
    protected NDList forwardInternal(
            ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> params) {
        NDArray y = body.forward(ps, inputs, training).singletonOrThrow();
        if (!residual) {
            return new NDList(y);
        }
        if (training && stochasticDepth > 0 && trains()) {
            y = StochasticDepth.rows(y, stochasticDepth);
        }
        return new NDList(y.add(inputs.singletonOrThrow()));
    }

    /**
     * Whether any parameter of the block trains. A frozen block is a fixed function, as frozen BatchNorm keeps its
     * statistics under {@code batchnorm: auto}: its stochastic depth is off, so a frozen prefix stays cacheable.
     */
    private boolean trains() {
        return getParameters().values().stream().anyMatch(p -> p.requiresGradient());
    }

    @Override
    public Shape[] getOutputShapes(Shape[] inputs) {
        return body.getOutputShapes(inputs);
    }
}
