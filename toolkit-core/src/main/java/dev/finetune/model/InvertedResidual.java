package dev.finetune.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.ParameterStore;
import ai.djl.util.PairList;

/**
 * The inverted residual of MobileNetV2/V3 and EfficientNet's MBConv: a body ({@code conv} in MobileNetV2,
 * {@code block} in V3 and EfficientNet) plus the input where the shape is kept.
 */
public final class InvertedResidual extends TorchModule {
    private final Sequential body;
    private final boolean residual;

    /**
     * @param bodyName torchvision's attribute name for the body
     * @param body the layers
     * @param residual whether the input is added (stride 1 and equal channels)
     */
    public InvertedResidual(String bodyName, Sequential body, boolean residual) {
        this.body = child(bodyName, body);
        this.residual = residual;
    }

    @Override
    protected NDList forwardInternal(
            ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> params) {
        NDArray y = body.forward(ps, inputs, training).singletonOrThrow();
        return new NDList(residual ? y.add(inputs.singletonOrThrow()) : y);
    }

    @Override
    public Shape[] getOutputShapes(Shape[] inputs) {
        return body.getOutputShapes(inputs);
    }
}
