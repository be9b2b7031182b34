package dev.finetune.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.nn.Activation;
import ai.djl.training.ParameterStore;

/** A ResNet unit ({@link BasicBlock} or {@link Bottleneck}); torchvision calls the class attribute {@code expansion}. */
public interface ResidualBlock {
    /** Output channels = planes × expansion. */
    int expansion();

    /**
     * The tail both units share: {@code relu(out + identity)}, where identity is the unit's input or, where the shape
     * changes, {@code downsample(input)}. The sum is in place, as torchvision's {@code out += identity}: the last BN's
     * output feeds only this sum (BN's backward does not save its output), so it reuses that buffer instead of
     * allocating another map of the same size; the downsample's output and the sum are freed as soon as consumed
     * ({@link StepScopes}: inside its run or releasing, a no-op elsewhere).
     */
    static NDList addIdentityRelu(ParameterStore ps, NDList inputs, NDList out, Sequential downsample,
            boolean training) {
        NDArray identity = downsample == null ? inputs.singletonOrThrow()
                : downsample.forward(ps, inputs, training).singletonOrThrow();
        NDArray sum = out.singletonOrThrow();
        sum.addi(identity);
        if (downsample != null) {
            StepScopes.free(identity);
        }
        return new NDList(StepScopes.release(sum, Activation.relu(sum)));
    }
}
