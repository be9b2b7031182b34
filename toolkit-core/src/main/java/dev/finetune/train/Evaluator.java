package dev.finetune.train;

import ai.djl.ndarray.NDArray;
import dev.finetune.data.BatchLoader;
import dev.finetune.data.LoadedBatch;
import dev.finetune.engine.Engines;
import dev.finetune.metrics.ClassificationMetrics;
import dev.finetune.metrics.EpochMetrics;

/** Loss, top-1/top-5, per-class accuracy and confusion over a loader, with no autograd graph. */
public final class Evaluator {
    private Evaluator() {}

    /** Evaluates {@code ft}'s model on every batch of {@code loader} (closing each batch). */
    public static EpochMetrics evaluate(FineTuner ft, BatchLoader loader, int classes) {
        ClassificationMetrics metrics = new ClassificationMetrics(classes);
        try (Engines.NoGrad g = Engines.noGrad()) {
            while (loader.hasNext()) {
                try (LoadedBatch b = loader.next()) {
                    NDArray logits = ft.predictLogits(b.images());
                    logits.attach(b.manager());
                    NDArray loss = ft.loss(b.labels(), logits);
                    metrics.addLoss(loss.getFloat() * (double) b.size(), b.size());
                    long[] labels = b.labels().toLongArray();
                    int[] y = new int[labels.length];
                    for (int i = 0; i < y.length; i++) {
                        y[i] = (int) labels[i];
                    }
                    metrics.add(logits.toFloatArray(), y, b.size(), classes);
                }
            }
        }
        return metrics.result();
    }
}
