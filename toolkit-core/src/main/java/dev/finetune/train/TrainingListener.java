package dev.finetune.train;

import dev.finetune.metrics.EpochMetrics;

/**
 * One concern of a training run (checkpoints, metrics, progress, unfreezing, early stopping), called around the
 * loop in {@link Trainer}. Each has one job; the loop itself stays short.
 */
public interface TrainingListener {
    /** Before the first epoch (or the first epoch after a resume). */
    default void onTrainStart(TrainContext ctx) {}

    /** At the start of epoch {@code epoch} (1-based), before any batch. */
    default void onEpochStart(TrainContext ctx, int epoch, int batches) {}

    /** After each optimizer step. */
    default void onStep(TrainContext ctx, int batchInEpoch, int images, float loss, double lr) {}

    /** After validation of epoch {@code epoch}; {@code val} is null without validation data. */
    default void onEpochEnd(TrainContext ctx, EpochSummary summary) {}

    /** After the run, normally or by early stopping. */
    default void onTrainEnd(TrainContext ctx) {}

    /**
     * An epoch's results.
     *
     * @param epoch 1-based
     * @param trainLoss mean training loss
     * @param val validation metrics or null
     * @param lr learning rate at the epoch's last step
     * @param seconds wall time of the epoch (training and validation)
     * @param imagesPerSecond training throughput
     * @param trainableParams trainable parameters during the epoch
     * @param featureCache whether the epoch trained from cached features
     */
    record EpochSummary(
            int epoch,
            double trainLoss,
            EpochMetrics val,
            double lr,
            double seconds,
            double imagesPerSecond,
            long trainableParams,
            boolean featureCache) {}
}
