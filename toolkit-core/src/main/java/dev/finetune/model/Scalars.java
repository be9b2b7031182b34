package dev.finetune.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.Shape;

/**
 * Scalar operands that libtorch owns, for arithmetic that autograd records.
 *
 * <p>Why not {@code x.div(6)}: DJL turns a Number operand into a tensor over a Java buffer without copying and closes
 * it right after the op, while autograd keeps that tensor for the backward ({@code DivBackward} saves its divisor,
 * {@code MulBackward} its other factor). The backward then read memory that another allocation may have reused:
 * MobileNetV3's hard-swish made training results depend on what other threads allocated (NaN losses, CLI runs that
 * did not repeat; AllocationNoiseTest). {@code full} allocates in libtorch, so the graph's reference keeps it alive.
 */
public final class Scalars {
    private Scalars() {}

    /** A 0-dimensional tensor holding {@code value}, of {@code like}'s type, owned by libtorch. */
    public static NDArray of(NDArray like, float value) {
        return like.getManager().full(new Shape(), value, like.getDataType());
    }
}
