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
    private volatile float rate;

    /** {@code StochasticDepth(p, "row")}. */
    public StochasticDepth(float rate) {
        setRate(rate);
    }

    public float rate() {
        return rate;
    }

    /** Changes the rate (tests compare train-mode forwards with it off). */
    public void setRate(float p) {
        if (p < 0 || p >= 1) {
            throw new IllegalArgumentException("stochastic depth must be in [0, 1), found " + p);
        }
        rate = p;
    }

    /**
     * {@code y} with rows dropped in a training forward of {@code owner}. A block whose parameters are all frozen is
     * a fixed function, as frozen BatchNorm keeps its statistics under {@code batchnorm: auto}: its stochastic depth
     * is off, so a frozen prefix stays cacheable.
     */
    public NDArray apply(NDArray y, ai.djl.nn.Block owner, boolean training) {
        if (!training || rate <= 0
                || owner.getParameters().values().stream().noneMatch(ai.djl.nn.Parameter::requiresGradient)) {
            return y;
        }
        return rows(y, rate);
    }

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
