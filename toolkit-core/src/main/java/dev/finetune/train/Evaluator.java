package dev.finetune.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.training.ParameterStore;
import ai.djl.training.loss.Loss;
import dev.finetune.model.ResNet;
import dev.finetune.data.BatchLoader;
import dev.finetune.data.LoadedBatch;
import dev.finetune.engine.Engines;
import dev.finetune.metrics.ClassificationMetrics;
import dev.finetune.metrics.EpochMetrics;

/** Loss, top-1/top-5, per-class accuracy and confusion over a loader, with no autograd graph. */
public final class Evaluator {
    private Evaluator() {}

    private static final Loss LOSS = Loss.softmaxCrossEntropyLoss("cross_entropy");

    /** Evaluates {@code ft}'s model on every batch of {@code loader} (closing each batch). */
    public static EpochMetrics evaluate(FineTuner ft, BatchLoader loader, int classes) {
        return evaluate(ft.model(), ft.parameterStore(), loader, classes);
    }

    /** Evaluates {@code model} (eval mode, no graph) on every batch of {@code loader}. */
    public static EpochMetrics evaluate(ResNet model, ParameterStore ps, BatchLoader loader, int classes) {
        ClassificationMetrics metrics = new ClassificationMetrics(classes);
        try (Engines.NoGrad g = Engines.noGrad()) {
            while (loader.hasNext()) {
                try (LoadedBatch b = loader.next()) {
                    NDArray logits = model.forward(ps, new NDList(b.images()), false).singletonOrThrow();
                    logits.attach(b.manager());
                    NDArray loss = LOSS.evaluate(new NDList(b.labels()), new NDList(logits));
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
