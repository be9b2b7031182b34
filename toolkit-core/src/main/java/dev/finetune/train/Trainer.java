package dev.finetune.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.finetune.ErrorKind;
import dev.finetune.FinetuneException;
import dev.finetune.checkpoint.HostTensor;
import dev.finetune.data.BatchLoader;
import dev.finetune.data.LoadedBatch;
import dev.finetune.inspect.InspectReport;
import dev.finetune.inspect.ModelInspector;
import dev.finetune.metrics.EpochMetrics;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * The training loop: epochs of steps, validation, and listeners for everything else (checkpoints, metrics, progress,
 * gradual unfreezing, early stopping). Built from objects, not from a config:
 *
 * <pre>{@code
 * TrainState end = Trainer.builder(fineTuner, data)
 *         .epochs(15).batchSize(32).seed(0)
 *         .schedule(LrSchedule.Spec.cosine(1.0, 0))
 *         .listener(new GradualUnfreezing(steps))
 *         .build()
 *         .fit();
 * }</pre>
 *
 * <p>Deterministic given the seed: data order and augmentation come from (seed, epoch), dropout from a per-step engine
 * seed, so a resumed run continues exactly where an uninterrupted one would be.
 */
public final class Trainer {
    /** Feature caches larger than this are not built (override with -Dfinetune.cache.max.bytes). */
    static final long DEFAULT_CACHE_BYTES = 4L << 30;

    private final FineTuner ft;
    private final TrainingData data;
    private final Settings settings;
    private final int updateBnBatches;
    private final int recoveryInterval;
    private final java.nio.file.Path featureStore;
    /** Whether the store has been read (it serves the first plan; a later plan caches in memory). */
    private boolean storeRead;
    /** Seconds spent reading the feature store, for the run summary; 0 when none. */
    private double storeSeconds;
    private final List<TrainingListener> listeners;
    private final TrainState resumeState;
    private final Map<String, HostTensor> resumeOptimizer;

    /**
     * What the loop does, besides the model and the data.
     *
     * @param epochs epochs to run, >= 1
     * @param batchSize images per step, >= 1
     * @param seed the seed of shuffling, augmentation and dropout
     * @param maxStepsPerEpoch a cap on steps per epoch, or null
     * @param featureCache whether a deterministic frozen prefix's output is computed once and reused
     * @param schedule the learning-rate schedule (its base is the optimizer's lr)
     * @param accumulateSteps batches whose gradients are summed before one optimizer step (1: every batch steps)
     * @param mixup batch-level Mixup/CutMix, or null
     * @param emaDecay the decay of a weight EMA ({@link WeightEma}), or null for none
     * @param valEvery validate after every this many epochs and after the last (1: every epoch)
     */
    public record Settings(int epochs, int batchSize, int seed, Integer maxStepsPerEpoch, boolean featureCache,
            LrSchedule.Spec schedule, int accumulateSteps, Mixup mixup, Double emaDecay, int valEvery) {
        public Settings {
            if (valEvery < 1) {
                throw new IllegalArgumentException("validation interval must be >= 1 epoch, found " + valEvery);
            }
            if (accumulateSteps < 1) {
                throw new IllegalArgumentException("accumulate steps must be >= 1, found " + accumulateSteps);
            }
            if (epochs < 1) {
                throw new IllegalArgumentException("epochs must be >= 1, found " + epochs);
            }
            if (batchSize < 1) {
                throw new IllegalArgumentException("batch size must be >= 1, found " + batchSize);
            }
            if (maxStepsPerEpoch != null && maxStepsPerEpoch < 1) {
                throw new IllegalArgumentException("max steps per epoch must be >= 1, found " + maxStepsPerEpoch);
            }
            Objects.requireNonNull(schedule, "schedule");
        }
    }

    private Trainer(Builder b) {
        this.ft = Objects.requireNonNull(b.fineTuner, "fineTuner");
        this.data = Objects.requireNonNull(b.data, "data");
        this.settings = new Settings(b.epochs, b.batchSize, b.seed, b.maxStepsPerEpoch, b.featureCache, b.schedule,
                b.accumulateSteps, b.mixup, b.emaDecay, b.valEvery);
        this.updateBnBatches = b.updateBnBatches;
        this.recoveryInterval = b.recoveryInterval;
        this.featureStore = b.featureStore;
        this.listeners = List.copyOf(b.listeners);
        this.resumeState = b.resumeState;
        this.resumeOptimizer = b.resumeOptimizer;
    }

    /** A trainer of {@code fineTuner} on {@code data}; the builder's defaults are the config's defaults. */
    public static Builder builder(FineTuner fineTuner, TrainingData data) {
        return new Builder(fineTuner, data);
    }

    /** The loop's settings. */
    public Settings settings() {
        return settings;
    }

    /** Runs to the end (or early stop) and returns the final state. Interrupts end in a FinetuneException. */
    public TrainState fit() {
        TrainState state = resumeState != null ? resumeState : TrainState.start(settings.seed());
        TrainContext ctx = new TrainContext(ft, data, settings, state);
        int stepsPerEpoch = stepsPerEpoch();
        LrSchedule schedule = new LrSchedule(settings.schedule(), ft.optimizer().settings().lr(), stepsPerEpoch,
                settings.epochs());
        if (settings.emaDecay() != null) {
            // Averaged from the weights the run starts (or resumes) with; a resumed run restores its averages.
            ctx.setEma(WeightEma.start(ft, settings.emaDecay()));
            if (resumeOptimizer != null) {
                ctx.ema().importState(resumeOptimizer);
            }
        }
        listeners.forEach(l -> l.onTrainStart(ctx));
        try {
            TrainState end = loop(ctx, state, stepsPerEpoch, schedule);
            listeners.forEach(l -> l.onTrainEnd(ctx));
            return end;
        } catch (RuntimeException e) {
            for (TrainingListener l : listeners) {
                try {
                    l.onTrainFailed(ctx, e);
                } catch (RuntimeException suppressed) {
                    e.addSuppressed(suppressed);
                }
            }
            throw e;
        } finally {
            if (ctx.ema() != null) {
                ctx.ema().close();
            }
        }
    }

    private TrainState loop(TrainContext ctx, TrainState state, int stepsPerEpoch, LrSchedule schedule) {
        FrozenGuard guard = null;
        FeatureCache cache = null;
        FeatureCache valCache = null;
        long planVersion = -1;
        boolean first = true;
        dev.finetune.engine.MallocPolicy.beforeTraining(); // fixed thresholds: no per-step trim-and-refault state
        try {
            for (int epoch = state.epochsCompleted() + 1; epoch <= settings.epochs(); epoch++) {
                for (TrainingListener l : listeners) {
                    l.onEpochBegin(ctx, epoch);
                }
                state = ctx.state();
                if (first && resumeOptimizer != null) {
                    // After the listeners re-made the optimizer groups the run had (gradual unfreezing).
                    Map<String, HostTensor> optimizerOnly = new java.util.LinkedHashMap<>(resumeOptimizer);
                    optimizerOnly.keySet().removeIf(k -> k.startsWith(WeightEma.STATE_PREFIX));
                    ft.optimizer().importState(optimizerOnly);
                }
                first = false;
                if (ft.planVersion() != planVersion) {
                    // A new plan (the start, or an unfreeze step): check its fast path, guard its frozen tensors,
                    // and forget features of a prefix that may have changed.
                    planVersion = ft.planVersion();
                    verifyFastPath();
                    if (guard != null) {
                        guard.close();
                    }
                    guard = FrozenGuard.capture(ft.model(), ft.plan(), ft.manager());
                    cache = close(cache);
                    valCache = close(valCache);
                }
                if (cache == null && settings.featureCache() && featureStore != null && !storeRead) {
                    storeRead = true;
                    long c0 = System.nanoTime();
                    FeatureCache[] stored = stoppable(ctx, epoch, state, this::fromStore);
                    cache = stored[0];
                    valCache = ctx.hasValidation() ? stored[1] : close(stored[1]);
                    storeSeconds = (System.nanoTime() - c0) / 1e9;
                    ctx.addCacheBuildSeconds(storeSeconds);
                }
                if (cache == null && settings.featureCache()) {
                    long c0 = System.nanoTime();
                    cache = stoppable(ctx, epoch, state, this::maybeCache);
                    if (cache != null && ctx.hasValidation()) {
                        FeatureCache train = cache;
                        valCache = stoppable(ctx, epoch, state, () -> FeatureCache.build(ft, data, data.val(),
                                train.stage(), settings.batchSize(),
                                Long.getLong("finetune.cache.max.bytes", DEFAULT_CACHE_BYTES), train.key()));
                    }
                    if (cache != null) {
                        ctx.addCacheBuildSeconds((System.nanoTime() - c0) / 1e9);
                    }
                }
                long t0 = System.nanoTime();
                int batches = Math.min(stepsPerEpoch, plannedBatches());
                for (TrainingListener l : listeners) {
                    l.onEpochStart(ctx, epoch, batches);
                }
                EpochRun er = cache != null
                        ? cachedEpoch(ctx, cache, epoch, schedule, state)
                        : loaderEpoch(ctx, epoch, schedule, state);
                state = er.state;
                ctx.setState(state);
                dev.finetune.engine.MemoryUse.releaseFreePages(); // the steps' freed maps, before validation's
                dev.finetune.engine.MallocPolicy.beforeInference(); // the next full step lowers it again
                // Every valEvery epochs and after the last (Lightning's check_val_every_n_epoch): validation and
                // what serves it (BN recalibration, the EMA's validation) cost nothing to the training itself.
                boolean validating = epoch % settings.valEvery() == 0 || epoch == settings.epochs();
                if (updateBnBatches > 0 && validating) {
                    recalibrateBn(cache, epoch);
                }
                EpochMetrics val = validating ? validate(valCache) : null;
                final FeatureCache vc = valCache;
                EpochMetrics emaVal = ctx.ema() == null || val == null ? null
                        : ctx.ema().withAveragedWeights(ft, () -> validate(vc));
                ctx.setFrozenVerified(guard.verifyQuick(ft.model()));
                if (cache != null) {
                    ctx.setFeatureCacheUsed();
                }
                double secs = (System.nanoTime() - t0) / 1e9;
                state = state.at(epoch, state.globalStep(), 0);
                ctx.setState(state);
                var summary = new TrainingListener.EpochSummary(epoch, er.meanLoss, val,
                        schedule.lr(Math.max(0, state.globalStep() - 1)), secs, er.imagesPerSecond,
                        ft.plan().trainableParameterCount(), cache != null, emaVal);
                for (TrainingListener l : listeners) {
                    l.onEpochEnd(ctx, summary);
                }
                dev.finetune.engine.MemoryUse.releaseFreePages(); // validation's and the checkpoints', before training
                state = ctx.state();
                if (ctx.stopReason() != null) {
                    break;
                }
            }
            // The full bit-level proof once, at the end (the per-epoch check compares native copies).
            if (guard != null) {
                ctx.setFrozenVerified(guard.verify(ft.model(), ft.plan()));
            }
        } finally {
            if (guard != null) {
                guard.close();
            }
            close(cache);
            close(valCache);
        }
        return ctx.state();
    }

    /**
     * {@link BnRecalibration} over the first {@code updateBnBatches} batches of this epoch's training order: the
     * cached features when the frozen prefix is cached (its BatchNorm layers keep their statistics), else the loader's
     * images, transformed as in training; dropout drawn from a seed of (run seed, epoch), so a resumed run
     * recomputes the same statistics.
     */
    private void recalibrateBn(FeatureCache cache, int epoch) {
        ft.manager().getEngine().setRandomSeed(stepSeed(settings.seed(), -epoch));
        int[][] plan = BatchLoader.plan(data.train().size(), data.trainOptions(settings.batchSize(), settings.seed()),
                epoch - 1);
        try (BnRecalibration r = BnRecalibration.start(ft.model())) {
            if (cache != null) {
                for (int b = 0; b < Math.min(plan.length, updateBnBatches); b++) {
                    try (NDManager bm = ft.manager().newSubManager()) {
                        NDArray[] xy = cache.batch(plan[b], bm);
                        if (xy != null) {
                            r.forward(ft, xy[0], cache.stage());
                        }
                    }
                }
                return;
            }
            try (BatchLoader loader = data.trainLoader(ft.manager(), settings.batchSize(), settings.seed(),
                    epoch - 1)) {
                for (int b = 0; b < updateBnBatches && loader.hasNext(); b++) {
                    try (LoadedBatch batch = loader.next()) {
                        r.forward(ft, batch.images(), 0);
                    }
                }
            }
        }
    }

    private EpochMetrics validate(FeatureCache valCache) {
        if (valCache != null) {
            return Evaluator.evaluate(ft, valCache, settings.batchSize(), data.numClasses());
        }
        try (BatchLoader vl = data.valLoader(ft.manager(), settings.batchSize())) {
            return vl == null ? null : Evaluator.evaluate(ft, vl, data.numClasses());
        }
    }

    private static FeatureCache close(FeatureCache c) {
        if (c != null) {
            c.close();
        }
        return null;
    }

    /**
     * Checks the folded frozen prefix against the plain network on this host before the first step, at the batch
     * shapes this run will use, so that run.json records what runs (other shapes are checked when first seen).
     */
    private void verifyFastPath() {
        int side = data.transforms().imageSize();
        int n = data.train().size();
        int full = Math.min(settings.batchSize(), Math.max(1, n));
        ft.verifyFastPath(new Shape(full, 3, side, side));
        if (n > full && n % full != 0) {
            ft.verifyFastPath(new Shape(n % full, 3, side, side));
        }
    }

    private int stepsPerEpoch() {
        int n = plannedBatches();
        return settings.maxStepsPerEpoch() == null ? n : Math.min(n, settings.maxStepsPerEpoch());
    }

    private int plannedBatches() {
        return (data.train().size() + settings.batchSize() - 1) / settings.batchSize();
    }

    /** The first plan's caches, read from the feature store; refused unless the prefix could be cached at all. */
    private FeatureCache[] fromStore() {
        if (settings.mixup() != null) {
            throw new dev.finetune.ConfigException("train.feature_store", "cannot be used with train.mixup: the"
                    + " frozen prefix's input changes every step; drop one of the two");
        }
        return dev.finetune.store.FeatureStore.load(featureStore, ft, data, deterministicPrefixEnd(ft, data, "train.feature_store"));
    }

    /**
     * Where the deterministic frozen prefix of {@code ft}'s plan on {@code data} ends: its first trainable stage, when
     * the stages before it are a fixed function of the image (no random augmentation, BatchNorm statistics frozen);
     * what a feature store holds. Refused otherwise, as a config error naming {@code user} (the key or command).
     */
    public static int deterministicPrefixEnd(FineTuner ft, TrainingData data, String user) {
        if (data.augment()) {
            throw new dev.finetune.ConfigException(user, "needs data.augment: false: with random augmentation the"
                    + " frozen prefix's input changes every epoch");
        }
        InspectReport.Frontier f = ModelInspector.frontier(ft.model(), ft.plan(), data.transforms().imageSize());
        int stage = ft.model().stageIndex(f.firstTrainableStage());
        if (stage == 0) {
            throw new dev.finetune.ConfigException(user, "needs a frozen prefix, but the freeze policy trains the"
                    + " first stage (" + f.firstTrainableStage() + "); freeze the stages to store");
        }
        if (!f.deterministicPrefix()) {
            throw new dev.finetune.ConfigException(user, "needs a frozen prefix whose BatchNorm layers keep their"
                    + " statistics; this policy updates them before " + f.firstTrainableStage()
                    + " (set the policy's batchnorm to freeze)");
        }
        return stage;
    }

    private FeatureCache maybeCache() {
        if (settings.mixup() != null) {
            return null; // mixed images change the frozen prefix's input at every step
        }
        return cacheFor(ft, data, settings.batchSize());
    }

    /**
     * The training set's outputs of the frozen prefix, when that prefix is a fixed function of deterministic inputs
     * and fits the cache budget ({@code -Dfinetune.cache.max.bytes}, default 4 GiB); else null.
     */
    static FeatureCache cacheFor(FineTuner ft, TrainingData data, int batchSize) {
        if (data.augment()) {
            return null;
        }
        InspectReport.Frontier f = ModelInspector.frontier(ft.model(), ft.plan(), data.transforms().imageSize());
        int stage = ft.model().stageIndex(f.firstTrainableStage());
        if (stage == 0 || !f.deterministicPrefix()) {
            return null;
        }
        long max = Long.getLong("finetune.cache.max.bytes", DEFAULT_CACHE_BYTES);
        String key = ft.plan().frozenParameterCount() + " frozen parameters, prefix to " + f.firstTrainableStage()
                + "|" + data.transforms() + "|" + data.train().fingerprint();
        return FeatureCache.build(ft, data, stage, batchSize, max, key);
    }

    private record EpochRun(TrainState state, double meanLoss, double imagesPerSecond) {}

    private EpochRun loaderEpoch(TrainContext ctx, int epoch, LrSchedule schedule, TrainState state) {
        int skip = state.batchesIntoEpoch();
        // A resumed epoch's mean loss covers the batches before the stop too.
        double lossSum = state.epochLossSum();
        int seen = state.batchesIntoEpoch();
        long images = 0;
        long t0 = System.nanoTime();
        long step = state.globalStep();
        int limit = stepsPerEpoch();
        int[][] plan = BatchLoader.plan(data.train().size(), data.trainOptions(settings.batchSize(), settings.seed()),
                epoch - 1);
        try (BatchLoader loader = data.trainLoader(ft.manager(), settings.batchSize(), settings.seed(), epoch - 1)) {
            int b = 0;
            while (loader.hasNext() && b < limit) {
                boolean groupEnd = groupEnd(b, limit);
                try (LoadedBatch batch = loader.next()) {
                    if (b < skip) {
                        b++;
                        continue;
                    }
                    double lr = schedule.lr(step);
                    NDArray x = batch.images();
                    NDArray y = batch.labels();
                    if (settings.mixup() != null) {
                        Mixup.Mixed m = settings.mixup().apply(x, y, data.numClasses(), ft.loss().labelSmoothing(),
                                settings.seed(), epoch - 1, b, batch.manager());
                        x = m.images();
                        y = m.targets();
                    }
                    float loss = step(ctx, x, y, lr, 0, step, epoch, b, lossScale(plan, b, limit), groupEnd);
                    step++;
                    b++;
                    lossSum += loss;
                    seen++;
                    images += batch.size();
                    for (TrainingListener l : listeners) {
                        l.onStep(ctx, b, batch.size(), loss, lr);
                    }
                }
                if (groupEnd) {
                    checkStop(ctx, epoch, step, b, lossSum);
                    maybeRecoveryPoint(ctx, epoch, step, b, limit, lossSum);
                }
            }
        }
        double secs = (System.nanoTime() - t0) / 1e9;
        TrainState s = state.at(state.epochsCompleted(), step, 0);
        return new EpochRun(s, seen == 0 ? Double.NaN : lossSum / seen, images / Math.max(1e-9, secs));
    }

    private EpochRun cachedEpoch(TrainContext ctx, FeatureCache cache, int epoch, LrSchedule schedule,
            TrainState state) {
        int[][] plan = BatchLoader.plan(data.train().size(), data.trainOptions(settings.batchSize(), settings.seed()),
                epoch - 1);
        int limit = Math.min(plan.length, stepsPerEpoch());
        // A resumed epoch's mean loss covers the batches before the stop too.
        double lossSum = state.epochLossSum();
        int seen = state.batchesIntoEpoch();
        long images = 0;
        long t0 = System.nanoTime();
        long step = state.globalStep();
        for (int b = state.batchesIntoEpoch(); b < limit; b++) {
            try (NDManager bm = ft.manager().newSubManager()) {
                NDArray[] xy = cache.batch(plan[b], bm);
                if (xy == null) {
                    continue;
                }
                double lr = schedule.lr(step);
                float loss = step(ctx, xy[0], xy[1], lr, cache.stage(), step, epoch, b, lossScale(plan, b, limit),
                        groupEnd(b, limit));
                step++;
                lossSum += loss;
                seen++;
                int size = (int) xy[1].size();
                images += size;
                for (TrainingListener l : listeners) {
                    l.onStep(ctx, b + 1, size, loss, lr);
                }
            }
            if (groupEnd(b, limit)) {
                checkStop(ctx, epoch, step, b + 1, lossSum);
                maybeRecoveryPoint(ctx, epoch, step, b + 1, limit, lossSum);
            }
        }
        double secs = (System.nanoTime() - t0) / 1e9;
        TrainState s = state.at(state.epochsCompleted(), step, 0);
        return new EpochRun(s, seen == 0 ? Double.NaN : lossSum / seen, images / Math.max(1e-9, secs));
    }

    /** The seed of libtorch's generator for global step {@code step} of a run seeded {@code seed}. */
    static int stepSeed(long seed, long step) {
        return (int) (seed * 1_000_003L + step);
    }

    /** Whether batch {@code b} (0-based in its epoch of {@code limit}) ends a gradient-accumulation group. */
    private boolean groupEnd(int b, int limit) {
        int k = settings.accumulateSteps();
        return k == 1 || (b + 1) % k == 0 || b + 1 == limit;
    }

    /** Batch {@code b}'s share of its group's samples (1 without accumulation). */
    private double lossScale(int[][] plan, int b, int limit) {
        int k = settings.accumulateSteps();
        if (k == 1) {
            return 1.0;
        }
        int from = b / k * k;
        int to = Math.min(from + k, Math.min(limit, plan.length));
        long total = 0;
        for (int i = from; i < to; i++) {
            total += plan[i].length;
        }
        return (double) plan[b].length / total;
    }

    private float step(TrainContext ctx, NDArray x, NDArray y, double lr, int fromStage, long step, int epoch,
            int b, double lossScale, boolean applyStep) {
        // Dropout draws from libtorch's global generator: seeding it per step makes a resumed run (even one resumed
        // mid-epoch) draw exactly what the uninterrupted run drew.
        ft.seedNextStep(stepSeed(settings.seed(), step));
        try {
            float loss = ft.backward(x, y, fromStage, lossScale);
            if (applyStep) {
                ft.applyStep(lr);
                if (ctx.ema() != null) {
                    ctx.ema().update(ft);
                }
            }
            return loss;
        } catch (FinetuneException e) {
            if (e.kind() == ErrorKind.DIVERGED) {
                StringBuilder m = new StringBuilder("training diverged at epoch " + epoch + ", batch " + (b + 1)
                        + " (global step " + (step + 1) + "): " + e.getMessage() + ".");
                for (TrainingListener l : listeners) {
                    String note = l.onDiverged(ctx);
                    if (note != null) {
                        m.append(' ').append(note);
                    }
                }
                throw new FinetuneException(ErrorKind.DIVERGED, m.toString());
            }
            throw e;
        }
    }

    /**
     * Every {@code recoveryInterval} optimizer steps into an epoch (counted from the epoch's start, so the same
     * batches in a resumed run), let the listeners save a resumable state at this step boundary (timm's
     * {@code --recovery-interval}): a process killed without warning (SIGKILL, a lost machine) then loses at most that
     * many steps instead of the epoch. Not after the epoch's last batch, whose state the epoch's end saves anyway.
     */
    private void maybeRecoveryPoint(TrainContext ctx, int epoch, long step, int batchesDone, int limit,
            double lossSum) {
        if (recoveryInterval == 0 || batchesDone >= limit) {
            return;
        }
        int k = settings.accumulateSteps();
        int updates = (batchesDone + k - 1) / k;
        if (updates % recoveryInterval != 0) {
            return;
        }
        TrainState at = ctx.state().at(epoch - 1, step, batchesDone).withEpochLossSum(lossSum);
        for (TrainingListener l : listeners) {
            l.onRecoveryPoint(ctx, at);
        }
    }

    /**
     * A stop requested while the feature cache or store was being built (its prefix pass ends between batches with a
     * {@code FinetuneException}): the resumable stop at the start of {@code epoch}, where nothing of it has run.
     * Returns when no stop is pending.
     */
    private void stopAtEpochStart(TrainContext ctx, int epoch, TrainState state) {
        checkStop(ctx, epoch, state.globalStep(), state.batchesIntoEpoch(), state.epochLossSum());
    }

    /** {@code build}'s result; when it fails, first the stop at the start of {@code epoch} if one is pending. */
    private <T> T stoppable(TrainContext ctx, int epoch, TrainState state, java.util.function.Supplier<T> build) {
        try {
            return build.get();
        } catch (dev.finetune.FinetuneException e) {
            stopAtEpochStart(ctx, epoch, state);
            throw e;
        }
    }

    /** On Ctrl-C / SIGTERM: let the listeners save a resumable state at this step boundary, then stop (130 / 143). */
    private void checkStop(TrainContext ctx, int epoch, long step, int batchesDone, double lossSum) {
        ErrorKind why = StopSignal.requested();
        if (why == null) {
            return;
        }
        TrainState mid = ctx.state().at(epoch - 1, step, batchesDone).withEpochLossSum(lossSum);
        StringBuilder m = new StringBuilder((why == ErrorKind.INTERRUPTED ? "interrupted" : "terminated")
                + " in epoch " + epoch + " after " + batchesDone + " batches");
        for (TrainingListener l : listeners) {
            String note = l.onInterrupt(ctx, mid);
            if (note != null) {
                m.append("; ").append(note);
            }
        }
        throw new FinetuneException(why, m.toString());
    }

    /** Builds a {@link Trainer}; every setting has the config's default. */
    public static final class Builder {
        private final FineTuner fineTuner;
        private final TrainingData data;
        private int epochs = 10;
        private int batchSize = 32;
        private int seed;
        private Integer maxStepsPerEpoch;
        private int accumulateSteps = 1;
        private Mixup mixup;
        private Double emaDecay;
        private int updateBnBatches;
        private int recoveryInterval;
        private int valEvery = 1;
        private boolean featureCache = true;
        private java.nio.file.Path featureStore;
        private LrSchedule.Spec schedule = LrSchedule.Spec.constant();
        private final List<TrainingListener> listeners = new ArrayList<>();
        private TrainState resumeState;
        private Map<String, HostTensor> resumeOptimizer;

        private Builder(FineTuner fineTuner, TrainingData data) {
            this.fineTuner = fineTuner;
            this.data = data;
        }

        /** Epochs to run (default 10). */
        public Builder epochs(int epochs) {
            this.epochs = epochs;
            return this;
        }

        /** Images per optimizer step (default 32). */
        public Builder batchSize(int batchSize) {
            this.batchSize = batchSize;
            return this;
        }

        /** Seed of shuffling, augmentation and dropout (default 0). */
        public Builder seed(int seed) {
            this.seed = seed;
            return this;
        }

        /** A cap on steps per epoch (quick runs and tests; default none). */
        public Builder maxStepsPerEpoch(Integer steps) {
            this.maxStepsPerEpoch = steps;
            return this;
        }

        /**
         * Gradient accumulation: each optimizer step sums the gradients of {@code steps} consecutive batches, each
         * loss weighted by its share of the group's samples, so a group equals one batch of them all (default 1).
         * The learning-rate schedule still advances per batch; a stop request is honoured at the end of a group, so
         * a resumed run is exact.
         */
        public Builder accumulateSteps(int steps) {
            this.accumulateSteps = steps;
            return this;
        }

        /** Batch-level Mixup/CutMix (default none); the feature cache is off while it is on. */
        public Builder mixup(Mixup mixup) {
            this.mixup = mixup;
            return this;
        }

        /**
         * A moving average of the weights with this decay (timm's ModelEmaV2), validated each epoch and kept in the
         * training state; null (default) for none.
         */
        public Builder ema(Double decay) {
            this.emaDecay = decay;
            return this;
        }

        /**
         * Before each validation, the running statistics of every BatchNorm layer that trains are recomputed as the
         * plain average over the first {@code batches} batches of the epoch's training order (PyTorch's
         * {@code torch.optim.swa_utils.update_bn}; {@link BnRecalibration}); 0 (default) off.
         */
        public Builder updateBnBatches(int batches) {
            if (batches < 0) {
                throw new IllegalArgumentException("update_bn batches must be >= 0, found " + batches);
            }
            this.updateBnBatches = batches;
            return this;
        }

        /**
         * Validate after every {@code epochs}-th epoch and after the last (default 1: every epoch); the epochs between
         * report no validation metrics, and the best checkpoint and early stopping see only validated epochs.
         */
        public Builder valEvery(int epochs) {
            this.valEvery = epochs;
            return this;
        }

        /**
         * Every {@code steps} optimizer steps into an epoch, the listeners save a resumable state
         * ({@link TrainingListener#onRecoveryPoint}; timm's {@code --recovery-interval}); 0 (default) only at the end
         * of each epoch and on Ctrl-C / SIGTERM.
         */
        public Builder recoveryInterval(int steps) {
            if (steps < 0) {
                throw new IllegalArgumentException("recovery interval must be >= 0, found " + steps);
            }
            this.recoveryInterval = steps;
            return this;
        }

        /**
         * A feature store written by {@code finetune features} ({@link dev.finetune.store.FeatureStore}): the first
         * plan's frozen-prefix outputs are read from it instead of computed; a store whose key differs is refused.
         * Null (default) for none.
         */
        public Builder featureStore(java.nio.file.Path dir) {
            this.featureStore = dir;
            return this;
        }

        /** Whether a deterministic frozen prefix is computed once and its output reused (default true). */
        public Builder featureCache(boolean on) {
            this.featureCache = on;
            return this;
        }

        /** The learning-rate schedule (default constant). */
        public Builder schedule(LrSchedule.Spec schedule) {
            this.schedule = schedule;
            return this;
        }

        /** Adds a listener; they are called in the order added. */
        public Builder listener(TrainingListener listener) {
            this.listeners.add(Objects.requireNonNull(listener));
            return this;
        }

        /** Adds listeners, in order. */
        public Builder listeners(List<? extends TrainingListener> more) {
            more.forEach(this::listener);
            return this;
        }

        /**
         * Continues a run from {@code state} with the optimizer state {@code optimizer} (a training checkpoint's),
         * imported once the listeners have re-made the run's optimizer groups.
         */
        public Builder resume(TrainState state, Map<String, HostTensor> optimizer) {
            this.resumeState = state;
            this.resumeOptimizer = optimizer;
            return this;
        }

        /** The trainer; {@link Trainer#fit()} runs it. */
        public Trainer build() {
            return new Trainer(this);
        }
    }
}
