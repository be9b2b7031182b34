package dev.finetune.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.initializer.Initializer;

/**
 * torchvision's initial values for a ResNet trained from scratch. DJL's defaults (Xavier) differ; with these a
 * from-scratch run starts where PyTorch's would.
 */
final class TorchInit {
    private TorchInit() {}

    /** {@code kaiming_normal_(w, mode="fan_out", nonlinearity="relu")}, as torchvision's ResNet does for convs. */
    static Initializer kaimingNormalFanOut() {
        return (NDManager manager, Shape shape, DataType dataType) -> {
            long fanOut = shape.get(0);
            for (int i = 2; i < shape.dimension(); i++) {
                fanOut *= shape.get(i);
            }
            float std = (float) Math.sqrt(2.0 / fanOut);
            return manager.randomNormal(0f, std, shape, dataType);
        };
    }

    /**
     * {@code nn.Linear}'s default: weight from {@code kaiming_uniform_(a=sqrt(5))}, bias from U(±1/sqrt(fan_in)); both
     * reduce to U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
     */
    static Initializer linearUniform(long fanIn) {
        float bound = (float) (1.0 / Math.sqrt(fanIn));
        return (NDManager manager, Shape shape, DataType dataType) -> {
            NDArray u = manager.randomUniform(-bound, bound, shape, dataType);
            return u;
        };
    }
}
