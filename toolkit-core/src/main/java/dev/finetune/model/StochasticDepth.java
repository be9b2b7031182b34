package dev.finetune.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

/**
 * torchvision's {@code ops.stochastic_depth(x, p, mode="row", training=True)}: each sample's branch is kept with
 * probability {@code 1 - p} and scaled by {@code 1 / (1 - p)}, else zeroed. The draws come from libtorch's generator,
 * which the trainer reseeds every step, so a resumed run draws what the uninterrupted one drew.
 */
public final class StochasticDepth {
    private StochasticDepth() {}

    /** {@code x} with whole rows (samples) dropped at rate {@code p}. */
    public static NDArray rows(NDArray x, float p) {
        if (p <= 0) {
            return x;
        }
        float survival = 1 - p;
        long[] size = new long[x.getShape().dimension()];
        java.util.Arrays.fill(size, 1);
        size[0] = x.getShape().get(0);
        NDArray keep = x.getManager().randomUniform(0f, 1f, new Shape(size), DataType.FLOAT32).lt(survival)
                .toType(x.getDataType(), false);
        return survival > 0 ? x.mul(keep.div(survival)) : x.mul(keep);
    }
}
