package dev.finetune.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Parameter;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.jni.JniUtils;
import ai.djl.training.ParameterStore;
import ai.djl.util.PairList;

/**
 * {@code nn.BatchNorm2d(c)} with torchvision's eps 1e-5 and momentum 0.1, and a {@link BnMode} that decides whether a
 * training-mode forward uses batch statistics and updates the running ones.
 *
 * <p>Why the mode lives here: DJL (like PyTorch) updates running statistics whenever {@code training=true}, frozen
 * parameters or not. A BN in {@link BnMode#FROZEN_STATS} always normalizes with its running statistics, so a frozen
 * backbone stays a fixed function while the head trains.
 */
public final class BatchNorm2d extends TorchModule {
    private final int channels;
    private final float eps;
    /** DJL's op takes the complement of torch's momentum (it passes {@code 1 - momentum} to libtorch). */
    private final float djlMomentum;
    private final float momentum;
    private final Parameter weight;
    private final Parameter bias;
    private final Parameter runningMean;
    private final Parameter runningVar;
    private volatile BnMode mode = BnMode.TRAIN;
    private long numBatchesTracked;
    /** torch's {@code momentum=None}: running statistics are the plain average of the batches seen since a reset. */
    private volatile boolean cumulative;

    /** torch's defaults: eps 1e-5, momentum 0.1. */
    public BatchNorm2d(int channels) {
        this(channels, 1e-5f, 0.1f);
    }

    /** {@code nn.BatchNorm2d(channels, eps=eps, momentum=momentum)} (MobileNetV3: 0.001, 0.01). */
    public BatchNorm2d(int channels, float eps, float momentum) {
        this.channels = channels;
        this.eps = eps;
        this.momentum = momentum;
        this.djlMomentum = 1 - momentum;
        Shape c = new Shape(channels);
        weight = param("weight", Parameter.Type.GAMMA, c, true);
        bias = param("bias", Parameter.Type.BETA, c, true);
        runningMean = param("running_mean", Parameter.Type.RUNNING_MEAN, c, false);
        runningVar = param("running_var", Parameter.Type.RUNNING_VAR, c, false);
    }

    public int channels() {
        return channels;
    }

    public float eps() {
        return eps;
    }

    public BnMode mode() {
        return mode;
    }

    public void setMode(BnMode mode) {
        this.mode = mode;
    }

    public Parameter weight() {
        return weight;
    }

    public Parameter bias() {
        return bias;
    }

    public Parameter runningMean() {
        return runningMean;
    }

    public Parameter runningVar() {
        return runningVar;
    }

    /** PyTorch's {@code num_batches_tracked}: training-mode forwards that updated the statistics. */
    public long numBatchesTracked() {
        return numBatchesTracked;
    }

    public void setNumBatchesTracked(long n) {
        numBatchesTracked = n;
    }

    /**
     * torch's {@code momentum=None} (on) or this layer's momentum (off): with it, each training forward moves the
     * running statistics by {@code 1 / num_batches_tracked}, so after a {@link #resetRunningStats()} they are the plain
     * average of the batches seen.
     */
    public void setCumulative(boolean on) {
        cumulative = on;
    }

    /** Whether {@link #setCumulative} is on. */
    public boolean cumulative() {
        return cumulative;
    }

    /**
     * The momentum libtorch's {@code batch_norm} receives from this layer's training forward, as a double: computed as
     * {@link #forwardInternal} computes it (through DJL's complement, in float), so that another caller of the same
     * op ({@link ResNetTrainScript}) moves the running statistics by the same amount.
     */
    public double opMomentum() {
        return (double) (1f - djlMomentum);
    }

    /**
     * Counts one training forward that updated the statistics, as {@link #forwardInternal} does, for a caller that ran
     * the op itself ({@link ResNetTrainScript}).
     */
    void countBatch() {
        numBatchesTracked++;
    }

    /** torch's {@code reset_running_stats()}: mean 0, variance 1, {@code num_batches_tracked} 0. */
    public void resetRunningStats() {
        runningMean.getArray().set(new float[channels]);
        float[] ones = new float[channels];
        java.util.Arrays.fill(ones, 1f);
        runningVar.getArray().set(ones);
        numBatchesTracked = 0;
    }

    /** Whether a forward with {@code training=true} would use batch statistics and update the running ones. */
    public boolean updatesStatistics(boolean training) {
        return training && mode == BnMode.TRAIN;
    }

    @Override
    protected NDList forwardInternal(
            ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> params) {
        NDArray x = inputs.singletonOrThrow();
        var device = x.getDevice();
        boolean batchStats = updatesStatistics(training);
        float djlFactor = djlMomentum;
        if (batchStats) {
            numBatchesTracked++;
            if (cumulative) {
                djlFactor = 1f - 1f / numBatchesTracked; // torch: exponential_average_factor = 1 / num_batches_tracked
            }
        }
        // libtorch's batch_norm directly, with the momentum DJL's BatchNorm.batchNorm would pass (1 - factor, in
        // float): that wrapper brackets the op with transpose(1, axis) for axis 1, so its output was an alias (a view)
        // of the result, and an in-place op on it (the residual sum) made autograd record CopySlices and clone the
        // map again in the backward. Same op, same arguments, same values; no views.
        return new NDList(JniUtils.batchNorm(
                (PtNDArray) x,
                (PtNDArray) ps.getValue(runningMean, device, training),
                (PtNDArray) ps.getValue(runningVar, device, training),
                (PtNDArray) ps.getValue(weight, device, training),
                (PtNDArray) ps.getValue(bias, device, training),
                batchStats,
                (double) (1f - djlFactor),
                (double) eps));
    }

    @Override
    public Shape[] getOutputShapes(Shape[] inputs) {
        return inputs;
    }

    @Override
    public String toString() {
        return "BatchNorm2d(" + channels + ", eps=" + eps + ", momentum=" + momentum + ", mode=" + mode + ")";
    }

    /** Always the eval form (running statistics), whatever {@link #mode()}: an export is for inference. */
    @Override
    public GraphSink.Value trace(GraphSink g, String prefix, GraphSink.Value x) {
        return output(g.op("BatchNormalization", java.util.Map.of("epsilon", eps), x.name(), g.tensor(prefix + "weight"),
                g.tensor(prefix + "bias"), g.tensor(prefix + "running_mean"), g.tensor(prefix + "running_var")), x);
    }
}
