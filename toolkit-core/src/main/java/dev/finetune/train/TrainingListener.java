package dev.finetune.train;

import dev.finetune.metrics.EpochMetrics;

/**
 * One concern of a training run (checkpoints, metrics, progress, unfreezing, early stopping), called around the
 * loop in {@link Trainer}. Each has one job; the loop itself stays short.
 */
public interface TrainingListener {
    /** Before the first epoch (or the first epoch after a resume). */
    default void onTrainStart(TrainContext ctx) {}

    /**
     * At the very start of epoch {@code epoch} (1-based), before the loop checks the plan and builds the feature cache:
     * the place to change what trains ({@link GradualUnfreezing}). On a resumed run the first call is for the epoch the
     * run continues in.
     */
    default void onEpochBegin(TrainContext ctx, int epoch) {}

    /** At the start of epoch {@code epoch} (1-based), before any batch. */
    default void onEpochStart(TrainContext ctx, int epoch, int batches) {}

    /** After each optimizer step. */
    default void onStep(TrainContext ctx, int batchInEpoch, int images, float loss, double lr) {}

    /** After validation of epoch {@code epoch}; {@code val} is null without validation data. */
    default void onEpochEnd(TrainContext ctx, EpochSummary summary) {}

    /** After the run, normally or by early stopping. */
    default void onTrainEnd(TrainContext ctx) {}

    /**
     * The run ends with an error (divergence, an interrupt, a full disk …): release what {@link #onTrainStart} opened.
     * Called instead of {@link #onTrainEnd}.
     */
    default void onTrainFailed(TrainContext ctx, RuntimeException error) {}

    /**
     * Ctrl-C or SIGTERM stops the run at a step boundary: save what lets it continue from {@code resumable}.
     *
     * @return a sentence for the user about what was saved (where, how to continue), or null
     */
    default String onInterrupt(TrainContext ctx, TrainState resumable) {
        return null;
    }

    /**
     * {@code train.recovery_interval} optimizer steps have passed in this epoch: save what lets the run continue from
     * {@code resumable} if the process is then killed without warning.
     */
    default void onRecoveryPoint(TrainContext ctx, TrainState resumable) {}

    /**
     * The loss became NaN or infinite and the run stops.
     *
     * @return a sentence for the user about what is kept, or null
     */
    default String onDiverged(TrainContext ctx) {
        return null;
    }

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
     * @param emaVal validation metrics of the weight EMA, or null (no EMA or no validation)
     */
    record EpochSummary(
            int epoch,
            double trainLoss,
            EpochMetrics val,
            double lr,
            double seconds,
            double imagesPerSecond,
            long trainableParams,
            boolean featureCache,
            EpochMetrics emaVal) {

        /** A metric's value this epoch by its name in metrics.csv ({@code val_top1}), NaN when not measured. */
        public double value(String metric) {
            return switch (metric) {
                case "train_loss" -> trainLoss;
                case "val_loss" -> val == null ? Double.NaN : val.loss();
                case "val_top1" -> val == null ? Double.NaN : val.top1();
                case "val_top5" -> val == null ? Double.NaN : val.top5();
                case "val_macro_f1" -> val == null ? Double.NaN : val.macroF1();
                default -> Double.NaN;
            };
        }
    }
}
