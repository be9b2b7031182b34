package dev.finetune.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.finetune.data.BatchLoader;
import dev.finetune.data.LoadedBatch;
import java.util.ArrayList;
import java.util.List;

/**
 * fastai's learning-rate range test ({@code Learner.lr_find}): one training step per learning rate, the rate growing
 * exponentially from {@code minLr} to {@code maxLr}; the loss is smoothed as fastai smooths it (exponential moving
 * average with β = 0.98, debiased) and the test stops when the smoothed loss exceeds 4× its minimum or is not finite.
 * Suggestions: the rate at the steepest fall of the smoothed loss, and the rate of its minimum divided by 10 (fastai's
 * {@code steep} and {@code minimum}). On a frozen, deterministic prefix the steps run from the feature cache, so the
 * test costs about one pass of the prefix. It trains the fine-tuner it is given: run it on a throwaway one.
 */
public final class LrFinder {
    private LrFinder() {}

    /**
     * The test's outcome.
     *
     * @param lrs the learning rate of each step taken
     * @param losses each step's training loss
     * @param smoothed the debiased smoothed loss after each step
     * @param steepest the rate at the steepest fall of the smoothed loss (NaN if too few steps)
     * @param minimumOver10 the rate at the smoothed loss's minimum, divided by 10
     * @param stoppedEarly whether the loss diverged before {@code maxLr}
     * @param featureCache whether the steps ran from cached prefix outputs
     */
    public record Result(List<Double> lrs, List<Double> losses, List<Double> smoothed, double steepest,
            double minimumOver10, boolean stoppedEarly, boolean featureCache) {}

    /** Runs the test with fastai's defaults' shape: {@code steps} rates from {@code minLr} to {@code maxLr}. */
    public static Result run(FineTuner ft, TrainingData data, int batchSize, long seed, double minLr, double maxLr,
            int steps) {
        if (!(minLr > 0 && maxLr > minLr) || steps < 2) {
            throw new IllegalArgumentException("need 0 < min_lr < max_lr and at least 2 steps");
        }
        List<Double> lrs = new ArrayList<>();
        List<Double> losses = new ArrayList<>();
        List<Double> smoothed = new ArrayList<>();
        double beta = 0.98;
        double avg = 0;
        double best = Double.POSITIVE_INFINITY;
        boolean stopped = false;
        FeatureCache cache = Trainer.cacheFor(ft, data, batchSize);
        try {
            int epoch = 0;
            int taken = 0;
            outer:
            while (taken < steps) {
                int[][] plan = BatchLoader.plan(data.train().size(), data.trainOptions(batchSize, seed), epoch);
                BatchLoader loader = cache == null ? data.trainLoader(ft.manager(), batchSize, seed, epoch) : null;
                try {
                    for (int b = 0; b < plan.length && taken < steps; b++) {
                        double lr = minLr * Math.pow(maxLr / minLr, (double) taken / (steps - 1));
                        ft.manager().getEngine().setRandomSeed(Trainer.stepSeed(seed, taken));
                        float loss;
                        if (cache != null) {
                            try (NDManager bm = ft.manager().newSubManager()) {
                                NDArray[] xy = cache.batch(plan[b], bm);
                                if (xy == null) {
                                    continue;
                                }
                                loss = trainStep(ft, xy[0], xy[1], lr, cache.stage());
                            }
                        } else {
                            if (!loader.hasNext()) {
                                break;
                            }
                            try (LoadedBatch batch = loader.next()) {
                                loss = trainStep(ft, batch.images(), batch.labels(), lr, 0);
                            }
                        }
                        taken++;
                        lrs.add(lr);
                        losses.add((double) loss);
                        avg = beta * avg + (1 - beta) * loss;
                        double s = avg / (1 - Math.pow(beta, taken));
                        smoothed.add(s);
                        best = Math.min(best, s);
                        if (!Double.isFinite(s) || s > 4 * best) {
                            stopped = true;
                            break outer;
                        }
                    }
                } finally {
                    if (loader != null) {
                        loader.close();
                    }
                }
                epoch++;
            }
        } finally {
            if (cache != null) {
                cache.close();
            }
        }
        return new Result(List.copyOf(lrs), List.copyOf(losses), List.copyOf(smoothed), steepest(lrs, smoothed),
                minimumOver10(lrs, smoothed), stopped, cache != null);
    }

    /** One step; a divergence (non-finite loss) ends the test like a smoothed loss above 4× its minimum. */
    private static float trainStep(FineTuner ft, NDArray x, NDArray y, double lr, int fromStage) {
        try {
            return ft.trainStep(x, y, lr, fromStage);
        } catch (dev.finetune.FinetuneException e) {
            if (e.kind() == dev.finetune.ErrorKind.DIVERGED) {
                return Float.NaN;
            }
            throw e;
        }
    }

    /**
     * The rate where the smoothed loss falls fastest per unit of log(lr) (fastai's {@code steep}), over the steps
     * fastai looks at: without the first tenth (the moving average is still settling) and the last five.
     */
    static double steepest(List<Double> lrs, List<Double> smoothed) {
        int n = finiteLength(smoothed);
        int from = n / 10;
        int to = n - (n >= 15 ? 5 : 0);
        if (to - from < 2) {
            return Double.NaN;
        }
        double best = Double.POSITIVE_INFINITY;
        int at = -1;
        for (int i = from + 1; i < to; i++) {
            double slope = (smoothed.get(i) - smoothed.get(i - 1)) / (Math.log(lrs.get(i)) - Math.log(lrs.get(i - 1)));
            if (slope < best) {
                best = slope;
                at = i;
            }
        }
        return lrs.get(at);
    }

    /** The rate of the smoothed loss's minimum, divided by 10 (fastai's {@code minimum}). */
    static double minimumOver10(List<Double> lrs, List<Double> smoothed) {
        int n = finiteLength(smoothed);
        int from = n / 10;
        int to = n - (n >= 15 ? 5 : 0);
        if (to <= from) {
            return Double.NaN;
        }
        int at = from;
        for (int i = from + 1; i < to; i++) {
            if (smoothed.get(i) < smoothed.get(at)) {
                at = i;
            }
        }
        return lrs.get(at) / 10;
    }

    private static int finiteLength(List<Double> values) {
        int n = 0;
        while (n < values.size() && Double.isFinite(values.get(n))) {
            n++;
        }
        return n;
    }
}
