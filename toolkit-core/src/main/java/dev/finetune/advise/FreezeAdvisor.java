package dev.finetune.advise;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import dev.finetune.data.BatchLoader;
import dev.finetune.data.ImageDataset;
import dev.finetune.data.LoadedBatch;
import dev.finetune.engine.Engines;
import dev.finetune.model.Network;
import dev.finetune.policy.BnPolicy;
import dev.finetune.policy.FreezePolicy;
import dev.finetune.train.FineTuner;
import dev.finetune.train.TrainingData;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Where to stop freezing: features at every stage boundary computed once (one forward per image, eval mode, no
 * autograd), a {@link LinearProbe} on each boundary's globally pooled features, and the measured cost of a training
 * step with everything up to that boundary frozen — on images, and on cached features (what a frozen prefix costs
 * after the feature cache has it).
 *
 * <p>The recommendation follows the transferability studies (Yosinski et al. 2014; Kornblith et al. 2019): a stage
 * whose features a linear classifier already separates well need not be trained, and where deeper features stop
 * getting better the deeper stages are too specific to the source task to be worth keeping frozen. So: freeze through
 * the deepest boundary whose probe is within {@code tolerance} of the best probe, and train what comes after. It reads
 * the probe curve only; what a partial fine-tune then gains over the probe is for the run to measure.
 */
public final class FreezeAdvisor {
    private FreezeAdvisor() {}

    /** One stage boundary: frozen through {@code stage}, the rest and the head trained. */
    public record Cut(String stage, int stageIndex, long featureDim, long trainableParameters, LinearProbe.Fit probe,
            double stepMsImages, double stepMsCached) {}

    /**
     * The advisor's table and verdict.
     *
     * @param cuts one per stage boundary, shallow to deep (the last is the linear probe)
     * @param fullTrainableParameters the full fine-tune's trainable parameters, for comparison
     * @param fullStepMs the full fine-tune's step time on images
     * @param recommended index into {@code cuts}
     * @param valSource where the probes were scored ("val", or the held-out share of train)
     */
    public record Advice(List<Cut> cuts, long fullTrainableParameters, double fullStepMs, int recommended,
            double tolerance, String valSource, int trainImages, int valImages, double featureSeconds,
            double probeSeconds, double timingSeconds, int batchSize, int imageSize) {

        public Cut recommendedCut() {
            return cuts.get(recommended);
        }

        /** The best probe's validation accuracy. */
        public double bestProbe() {
            return cuts.stream().mapToDouble(c -> c.probe().valAccuracy()).max().orElse(Double.NaN);
        }

        /** One sentence: what to freeze and why. */
        public String verdict() {
            Cut r = recommendedCut();
            Cut best = cuts.stream().max((a, b) -> Double.compare(a.probe().valAccuracy(), b.probe().valAccuracy()))
                    .orElseThrow();
            boolean probeOnly = recommended == cuts.size() - 1;
            String what = probeOnly ? "a linear probe (freeze through " + r.stage() + ", train the head)"
                    : "freeze through " + r.stage() + " and train the stages after it and the head";
            return String.format(java.util.Locale.ROOT,
                    "%s: its features probe at %.2f %%, %s the best (%.2f %% at %s, tolerance %.1f points); a step"
                            + " costs %.2fx the full fine-tune's on images, %.2fx on cached features",
                    what, 100 * r.probe().valAccuracy(), r == best ? "which is" : "within tolerance of",
                    100 * best.probe().valAccuracy(), best.stage(), 100 * tolerance,
                    r.stepMsImages() / fullStepMs, r.stepMsCached() / fullStepMs);
        }
    }

    /**
     * Runs the advisor on {@code ft} (which it trains during the timing: give it a throwaway fine-tuner).
     *
     * @param tolerance accuracy (fraction) a deeper boundary's probe may lose against the best
     * @param timingSteps timed steps per boundary after one warm-up (median)
     */
    public static Advice advise(FineTuner ft, TrainingData data, int batchSize, double lr, LinearProbe probe,
            double tolerance, int timingSteps) {
        Network model = ft.model();
        int cuts = model.stageNames().size() - 1;
        if (cuts < 1) {
            throw new IllegalArgumentException(model + " has no stage before its head");
        }
        try (NDManager m = ft.manager().newSubManager()) {
            long t0 = System.nanoTime();
            Features train = features(ft, data, data.train(), batchSize, cuts, m);
            Features val;
            String valSource;
            if (data.val() != null && data.val().size() > 0) {
                val = features(ft, data, data.val(), batchSize, cuts, m);
                valSource = "val";
            } else {
                Features[] split = train.holdOut(5, m);
                train = split[0];
                val = split[1];
                valSource = "every 5th training image (there is no validation set)";
            }
            double featureSeconds = (System.nanoTime() - t0) / 1e9;
            long t1 = System.nanoTime();
            List<LinearProbe.Fit> fits = new ArrayList<>();
            for (int k = 0; k < cuts; k++) {
                fits.add(probe.fit(train.perCut[k], train.labels, val.perCut[k], val.labels, data.numClasses()));
            }
            double probeSeconds = (System.nanoTime() - t1) / 1e9;

            long t2 = System.nanoTime();
            List<Cut> rows = new ArrayList<>();
            long fullParams;
            double fullMs;
            try (BatchLoader loader = new BatchLoader(data.train(), m, data.trainOptions(batchSize, 0).toBuilder()
                    .augment(false).build(), 0); LoadedBatch b = loader.next()) {
                for (int k = 0; k < cuts; k++) {
                    ft.applyPolicy(new FreezePolicy(true, k, List.of(), BnPolicy.AUTO));
                    int from = k + 1;
                    double onImages = median(timingSteps, () -> ft.trainStep(b.images(), b.labels(), lr));
                    NDArray f = ft.prefixFeatures(b.images(), from);
                    f.attach(b.manager());
                    double cached = median(timingSteps, () -> ft.trainStep(f, b.labels(), lr, from));
                    rows.add(new Cut(model.stageNames().get(k), k, train.perCut[k].getShape().get(1),
                            ft.plan().trainableParameterCount(), fits.get(k), onImages, cached));
                }
                ft.applyPolicy(new FreezePolicy(true, -1, List.of(), BnPolicy.AUTO));
                fullParams = ft.plan().trainableParameterCount();
                fullMs = median(timingSteps, () -> ft.trainStep(b.images(), b.labels(), lr));
            }
            double timingSeconds = (System.nanoTime() - t2) / 1e9;
            double best = fits.stream().mapToDouble(LinearProbe.Fit::valAccuracy).max().orElseThrow();
            int recommended = 0;
            for (int k = 0; k < cuts; k++) {
                if (fits.get(k).valAccuracy() >= best - tolerance - 1e-12) {
                    recommended = k;
                }
            }
            return new Advice(List.copyOf(rows), fullParams, fullMs, recommended, tolerance, valSource,
                    (int) train.labels.size(), (int) val.labels.size(), featureSeconds, probeSeconds, timingSeconds,
                    batchSize, data.transforms().imageSize());
        }
    }

    /** Pooled features of every stage boundary for one data set, and its labels, on one manager. */
    private record Features(NDArray[] perCut, NDArray labels) {
        /** Splits off every {@code every}-th sample as a held-out set. */
        Features[] holdOut(int every, NDManager m) {
            long n = labels.size();
            long[] keep = java.util.stream.LongStream.range(0, n).filter(i -> i % every != 0).toArray();
            long[] held = java.util.stream.LongStream.range(0, n).filter(i -> i % every == 0).toArray();
            return new Features[] {select(keep, m), select(held, m)};
        }

        private Features select(long[] rows, NDManager m) {
            NDArray index = m.create(rows);
            NDArray[] cuts = Arrays.stream(perCut).map(a -> a.get(new NDIndex("{}", index))).toArray(NDArray[]::new);
            return new Features(cuts, labels.get(new NDIndex("{}", index)));
        }
    }

    /** One eval-mode, no-autograd pass over {@code dataset}: each stage's output, globally average-pooled. */
    private static Features features(FineTuner ft, TrainingData data, ImageDataset dataset, int batchSize, int cuts,
            NDManager m) {
        List<List<NDArray>> chunks = new ArrayList<>();
        for (int k = 0; k < cuts; k++) {
            chunks.add(new ArrayList<>());
        }
        List<NDArray> labels = new ArrayList<>();
        try (Engines.NoGrad g = Engines.noGrad();
                BatchLoader loader = new BatchLoader(dataset, m, data.evalOptions(batchSize), 0)) {
            while (loader.hasNext()) {
                try (LoadedBatch b = loader.next()) {
                    NDArray h = b.images();
                    for (int k = 0; k < cuts; k++) {
                        h = ft.model().forwardStages(ft.parameterStore(), new NDList(h), false, k, k + 1)
                                .singletonOrThrow();
                        NDArray pooled = h.getShape().dimension() == 4 ? ai.djl.nn.pooling.Pool.globalAvgPool2d(h) : h;
                        pooled = pooled.getShape().dimension() == 2 ? pooled
                                : pooled.reshape(pooled.getShape().get(0), -1);
                        NDArray kept = pooled.duplicate();
                        kept.attach(m);
                        chunks.get(k).add(kept);
                    }
                    NDArray y = b.labels().duplicate();
                    y.attach(m);
                    labels.add(y);
                }
            }
        }
        NDArray[] perCut = new NDArray[cuts];
        for (int k = 0; k < cuts; k++) {
            perCut[k] = NDArrays.concat(new NDList(chunks.get(k)));
            chunks.get(k).forEach(NDArray::close);
        }
        NDArray y = NDArrays.concat(new NDList(labels));
        labels.forEach(NDArray::close);
        return new Features(perCut, y);
    }

    private static double median(int steps, Runnable step) {
        step.run(); // warm-up: first-use checks, kernel selection
        double[] ms = new double[Math.max(1, steps)];
        for (int i = 0; i < ms.length; i++) {
            long t = System.nanoTime();
            step.run();
            ms[i] = (System.nanoTime() - t) / 1e6;
        }
        Arrays.sort(ms);
        return ms[ms.length / 2];
    }
}
