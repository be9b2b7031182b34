/**
 * Measuring a classifier and keeping the record of a run.
 *
 * <p>{@link dev.finetune.metrics.ClassificationMetrics} turns logits and labels into an immutable
 * {@link dev.finetune.metrics.EpochMetrics} (loss, top-1, top-5, per-class accuracy, confusion matrix);
 * {@link dev.finetune.metrics.MetricsLog} appends one row per epoch to {@code metrics.csv} and {@code metrics.jsonl}
 * so that a crash or a resume never loses finished epochs; {@link dev.finetune.metrics.MetricChoice},
 * {@link dev.finetune.metrics.EarlyStopping} and {@link dev.finetune.metrics.BestTracker} decide from those numbers
 * when to stop and which epoch was best.
 *
 * <p>Everything here is plain Java on host arrays: the training loop copies logits off the device once per batch, so
 * the numbers are the same whichever engine or device produced them.
 */
package dev.finetune.metrics;
