package dev.finetune.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.training.ParameterStore;
import ai.djl.training.loss.Loss;
import dev.finetune.model.Network;
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

    /** Evaluates from cached prefix outputs: the rest of the network, eval mode, no graph. */
    public static EpochMetrics evaluate(FineTuner ft, FeatureCache cache, int batchSize, int classes) {
        ClassificationMetrics metrics = new ClassificationMetrics(classes);
        try (Engines.NoGrad g = Engines.noGrad()) {
            for (int start = 0; start < cache.size(); start += batchSize) {
                int n = Math.min(batchSize, cache.size() - start);
                try (ai.djl.ndarray.NDManager m = ft.manager().newSubManager()) {
                    NDArray[] xy = cache.rows(start, n, m);
                    NDArray logits = ft.model().forwardStages(ft.parameterStore(), new NDList(xy[0]), false,
                            cache.stage(), ft.model().stageNames().size()).singletonOrThrow();
                    logits.attach(m);
                    NDArray loss = LOSS.evaluate(new NDList(xy[1]), new NDList(logits));
                    metrics.addLoss(loss.getFloat() * (double) n, n);
                    long[] labels = xy[1].toLongArray();
                    int[] y = new int[n];
                    for (int i = 0; i < n; i++) {
                        y[i] = (int) labels[i];
                    }
                    metrics.add(logits.toFloatArray(), y, n, classes);
                }
            }
        }
        return metrics.result();
    }

    /**
     * Evaluates {@code model} (eval mode, no graph) on every batch of {@code loader}; a Ctrl-C or SIGTERM (with
     * {@link StopSignal#install(String)}) ends it between batches.
     */
    public static EpochMetrics evaluate(Network model, ParameterStore ps, BatchLoader loader, int classes) {
        return evaluate(x -> model.inferLogits(ps, x), loader, classes);
    }

    /** {@link #evaluate(Network, ParameterStore, BatchLoader, int)} with the logits of any inference path. */
    public static EpochMetrics evaluate(java.util.function.UnaryOperator<NDArray> logitsOf, BatchLoader loader,
            int classes) {
        ClassificationMetrics metrics = new ClassificationMetrics(classes);
        try (Engines.NoGrad g = Engines.noGrad()) {
            while (loader.hasNext()) {
                StopSignal.throwIfRequested("evaluation");
                try (LoadedBatch b = loader.next()) {
                    NDArray logits = logitsOf.apply(b.images());
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
