package dev.finetune.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.finetune.ErrorKind;
import dev.finetune.FinetuneException;
import dev.finetune.checkpoint.Checkpoint;
import dev.finetune.config.ConfigLoader;
import dev.finetune.config.TrainConfig;
import dev.finetune.data.BatchLoader;
import dev.finetune.data.LoadedBatch;
import dev.finetune.inspect.InspectReport;
import dev.finetune.inspect.ModelInspector;
import dev.finetune.metrics.EpochMetrics;
import dev.finetune.model.ResNet;
import dev.finetune.policy.FreezePolicy;
import dev.finetune.policy.NamePattern;
import java.util.ArrayList;
import java.util.List;

/**
 * The training loop: epochs of steps, validation, and listeners for everything else. Deterministic given the seed:
 * data order and augmentation come from (seed, epoch), dropout from a per-epoch engine seed, so a resumed run
 * continues exactly where an uninterrupted one would be.
 */
public final class Trainer {
    /** Feature caches larger than this are not built (override with -Dfinetune.cache.max.bytes). */
    static final long DEFAULT_CACHE_BYTES = 4L << 30;

    private final ConfigLoader.Loaded loaded;
    private final RunDirectory run;
    private final List<TrainingListener> listeners;
    private final TrainingCheckpoint.Loaded resumeFrom;

    private final Prepared prepared;

    /**
     * The data and the model of a run, built and checked before the run folder is touched: every error a user can
     * cause in the config, the data folder or the checkpoint surfaces here.
     *
     * @param data the opened data
     * @param fineTuner the model, policy and optimizer (closed with this)
     */
    public record Prepared(TrainingData data, FineTuner fineTuner) implements AutoCloseable {
        @Override
        public void close() {
            fineTuner.close();
        }
    }

    /** Opens the data and builds the model of {@code loaded} (from {@code resumeFrom} when resuming, else null). */
    public static Prepared prepare(ConfigLoader.Loaded loaded, TrainingCheckpoint.Loaded resumeFrom) {
        TrainingData data = TrainingData.open(loaded, loaded.config().train().seed());
        FineTuner ft = resumeFrom != null
                ? resumed(loaded, resumeFrom, data)
                : Experiment.fineTuner(loaded, Experiment.checkpoint(loaded), data.numClasses());
        return new Prepared(data, ft);
    }

    /**
     * A trainer for {@code loaded}, writing into {@code run}.
     *
     * @param resumeFrom the checkpoint to continue from, or null for a new run
     * @param prepared the data and model from {@link #prepare} for the same config and checkpoint
     */
    public Trainer(ConfigLoader.Loaded loaded, RunDirectory run, List<TrainingListener> listeners,
            TrainingCheckpoint.Loaded resumeFrom, Prepared prepared) {
        this.loaded = loaded;
        this.run = run;
        this.listeners = List.copyOf(listeners);
        this.resumeFrom = resumeFrom;
        this.prepared = prepared;
    }

    /** Runs to the end (or early stop) and returns the final state. Interrupts end in a FinetuneException. */
    public TrainState fit() {
        TrainConfig tc = loaded.config().train();
        TrainingData data = prepared.data();
        TrainState state = resumeFrom != null ? resumeFrom.meta().state() : TrainState.start(tc.seed());
        {
            FineTuner ft = prepared.fineTuner();
            TrainContext ctx = new TrainContext(loaded, ft, data, run, state);
            for (int i = 0; i < state.unfreezeApplied(); i++) {
                unfreeze(ft, tc.unfreeze().get(i), i);
            }
            if (resumeFrom != null) {
                ft.optimizer().importState(resumeFrom.optimizerState());
            }
            verifyFastPath(ft, data, tc);
            FrozenGuard guard = FrozenGuard.capture(ft.model(), ft.plan(), ft.manager());
            int stepsPerEpoch = stepsPerEpoch(data, tc);
            LrSchedule schedule = new LrSchedule(tc.schedule(), loaded.config().optimizer().toSettings().lr(),
                    stepsPerEpoch, tc.epochs());
            listeners.forEach(l -> l.onTrainStart(ctx));
            FeatureCache cache = null;
            FeatureCache valCache = null;
            try {
                for (int epoch = state.epochsCompleted() + 1; epoch <= tc.epochs(); epoch++) {
                    int applied = state.unfreezeApplied();
                    while (applied < tc.unfreeze().size() && tc.unfreeze().get(applied).atEpoch() <= epoch) {
                        unfreeze(ft, tc.unfreeze().get(applied), applied);
                        verifyFastPath(ft, data, tc);
                        applied++;
                        guard.close();
                        guard = FrozenGuard.capture(ft.model(), ft.plan(), ft.manager());
                        if (cache != null) {
                            cache.close();
                            cache = null;
                        }
                        if (valCache != null) {
                            valCache.close();
                            valCache = null;
                        }
                    }
                    state = state.withUnfreezeApplied(applied);
                    ctx.setState(state);
                    if (cache == null && tc.featureCache()) {
                        long c0 = System.nanoTime();
                        cache = maybeCache(ft, data, tc);
                        if (cache != null && data.val() != null && data.val().size() > 0) {
                            valCache = FeatureCache.build(ft, data, data.val(), cache.stage(), tc.batchSize(),
                                    Long.getLong("finetune.cache.max.bytes", DEFAULT_CACHE_BYTES), cache.key());
                        }
                        if (cache != null) {
                            ctx.addCacheBuildSeconds((System.nanoTime() - c0) / 1e9);
                        }
                    }
                    long t0 = System.nanoTime();
                    int batches = Math.min(stepsPerEpoch, plannedBatches(data, tc));
                    for (TrainingListener l : listeners) {
                        l.onEpochStart(ctx, epoch, batches);
                    }
                    EpochRun er = cache != null
                            ? cachedEpoch(ctx, cache, tc, epoch, schedule, state)
                            : loaderEpoch(ctx, tc, epoch, schedule, state);
                    state = er.state;
                    ctx.setState(state);
                    EpochMetrics val = null;
                    if (valCache != null) {
                        val = Evaluator.evaluate(ft, valCache, tc.batchSize(), data.numClasses());
                    } else {
                        try (BatchLoader vl = data.valLoader(ft.manager(), tc.batchSize())) {
                            if (vl != null) {
                                val = Evaluator.evaluate(ft, vl, data.numClasses());
                            }
                        }
                    }
                    ctx.setFrozenVerified(guard.verifyQuick(ft.model()));
                    if (cache != null) {
                        ctx.setFeatureCacheUsed();
                    }
                    double secs = (System.nanoTime() - t0) / 1e9;
                    state = state.at(epoch, state.globalStep(), 0);
                    ctx.setState(state);
                    var summary = new TrainingListener.EpochSummary(epoch, er.meanLoss, val,
                            schedule.lr(Math.max(0, state.globalStep() - 1)), secs, er.imagesPerSecond,
                            ft.plan().trainableParameterCount(), cache != null);
                    for (TrainingListener l : listeners) {
                        l.onEpochEnd(ctx, summary);
                    }
                    state = ctx.state();
                    if (ctx.stopReason() != null) {
                        break;
                    }
                }
                // The full bit-level proof once, at the end (the per-epoch check compares native copies).
                ctx.setFrozenVerified(guard.verify(ft.model(), ft.plan()));
            } finally {
                guard.close();
                if (cache != null) {
                    cache.close();
                }
                if (valCache != null) {
                    valCache.close();
                }
            }
            listeners.forEach(l -> l.onTrainEnd(ctx));
            return ctx.state();
        }
    }

    private static FineTuner resumed(ConfigLoader.Loaded loaded, TrainingCheckpoint.Loaded resumeFrom,
            TrainingData data) {
        TrainingCheckpoint.Meta meta = resumeFrom.meta();
        if (!meta.classNames().equals(data.classNames())) {
            throw new FinetuneException(ErrorKind.DATA, "the data's classes " + data.classNames()
                    + " differ from the checkpoint's " + meta.classNames() + "; resume with the same data");
        }
        return FineTuner.builder()
                .arch(dev.finetune.model.ResNetArch.parse(meta.arch()))
                .checkpoint(resumeFrom.checkpoint())
                .policy(loaded.config().freeze().toPolicy())
                .optimizer(loaded.config().optimizer().toSettings())
                .seed(loaded.config().train().seed())
                .threads(loaded.config().train().threads())
                .foldFrozenPrefix(loaded.config().train().foldFrozenBn())
                .dropout(loaded.config().model().head() == null ? 0f
                        : loaded.config().model().head().dropout().floatValue())
                .build();
    }

    /**
     * An unfreeze step: one more train rule at the end of the policy, and the parameters it newly makes trainable in
     * their own optimizer group with its learning-rate multiplier (default 1).
     */
    static void unfreeze(FineTuner ft, TrainConfig.UnfreezeConfig u, int index) {
        String where = "train.unfreeze[" + index + "]";
        List<NamePattern> pats = new ArrayList<>();
        for (int i = 0; i < u.match().size(); i++) {
            pats.add(NamePattern.parse(u.match().get(i), where + ".match"));
        }
        ft.unfreeze(new FreezePolicy.Rule(true, pats, where), u.lrMult() == null ? 1.0 : u.lrMult());
    }

    /**
     * Checks the folded frozen prefix against the plain network on this host before the first step, at the batch
     * shapes this run will use, so that run.json records what runs (other shapes are checked when first seen).
     */
    private static void verifyFastPath(FineTuner ft, TrainingData data, TrainConfig tc) {
        int side = data.transforms().imageSize();
        int n = data.train().size();
        int full = Math.min(tc.batchSize(), Math.max(1, n));
        ft.verifyFastPath(new Shape(full, 3, side, side));
        if (n > full && n % full != 0) {
            ft.verifyFastPath(new Shape(n % full, 3, side, side));
        }
    }

    private static int stepsPerEpoch(TrainingData data, TrainConfig tc) {
        int n = (data.train().size() + tc.batchSize() - 1) / tc.batchSize();
        return tc.maxStepsPerEpoch() == null ? n : Math.min(n, tc.maxStepsPerEpoch());
    }

    private static int plannedBatches(TrainingData data, TrainConfig tc) {
        return (data.train().size() + tc.batchSize() - 1) / tc.batchSize();
    }

    private FeatureCache maybeCache(FineTuner ft, TrainingData data, TrainConfig tc) {
        if (data.augment()) {
            return null;
        }
        InspectReport.Frontier f = ModelInspector.frontier(ft.model(), ft.plan(), data.transforms().imageSize());
        int stage = ResNet.stageNames().indexOf(f.firstTrainableStage());
        if (stage == 0 || !f.deterministicPrefix()) {
            return null;
        }
        long max = Long.getLong("finetune.cache.max.bytes", DEFAULT_CACHE_BYTES);
        String key = ft.plan().frozenParameterCount() + " frozen parameters, prefix to " + f.firstTrainableStage()
                + "|" + data.transforms() + "|" + data.train().fingerprint();
        return FeatureCache.build(ft, data, stage, tc.batchSize(), max, key);
    }

    private record EpochRun(TrainState state, double meanLoss, double imagesPerSecond) {}

    private EpochRun loaderEpoch(TrainContext ctx, TrainConfig tc, int epoch, LrSchedule schedule,
            TrainState state) {
        FineTuner ft = ctx.fineTuner();
        int skip = state.batchesIntoEpoch();
        // A resumed epoch's mean loss covers the batches before the stop too.
        double lossSum = state.epochLossSum();
        int seen = state.batchesIntoEpoch();
        long images = 0;
        long t0 = System.nanoTime();
        long step = state.globalStep();
        int limit = stepsPerEpoch(ctx.data(), tc);
        try (BatchLoader loader = ctx.data().trainLoader(ft.manager(), tc.batchSize(), tc.seed(), epoch - 1)) {
            int b = 0;
            while (loader.hasNext() && b < limit) {
                try (LoadedBatch batch = loader.next()) {
                    if (b < skip) {
                        b++;
                        continue;
                    }
                    double lr = schedule.lr(step);
                    float loss = step(ft, batch.images(), batch.labels(), lr, 0, step, epoch, b);
                    step++;
                    b++;
                    lossSum += loss;
                    seen++;
                    images += batch.size();
                    for (TrainingListener l : listeners) {
                        l.onStep(ctx, b, batch.size(), loss, lr);
                    }
                }
                checkStop(ctx, epoch, step, b, lossSum);
            }
        }
        double secs = (System.nanoTime() - t0) / 1e9;
        TrainState s = state.at(state.epochsCompleted(), step, 0);
        return new EpochRun(s, seen == 0 ? Double.NaN : lossSum / seen, images / Math.max(1e-9, secs));
    }

    private EpochRun cachedEpoch(TrainContext ctx, FeatureCache cache, TrainConfig tc, int epoch,
            LrSchedule schedule, TrainState state) {
        FineTuner ft = ctx.fineTuner();
        int[][] plan = BatchLoader.plan(ctx.data().train().size(), ctx.data().trainOptions(tc.batchSize(),
                tc.seed()), epoch - 1);
        int limit = Math.min(plan.length, stepsPerEpoch(ctx.data(), tc));
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
                float loss = step(ft, xy[0], xy[1], lr, cache.stage(), step, epoch, b);
                step++;
                lossSum += loss;
                seen++;
                int size = (int) xy[1].size();
                images += size;
                for (TrainingListener l : listeners) {
                    l.onStep(ctx, b + 1, size, loss, lr);
                }
            }
            checkStop(ctx, epoch, step, b + 1, lossSum);
        }
        double secs = (System.nanoTime() - t0) / 1e9;
        TrainState s = state.at(state.epochsCompleted(), step, 0);
        return new EpochRun(s, seen == 0 ? Double.NaN : lossSum / seen, images / Math.max(1e-9, secs));
    }

    private float step(FineTuner ft, NDArray x, NDArray y, double lr, int fromStage, long step, int epoch, int b) {
        // Dropout draws from libtorch's global generator: seeding it per step makes a resumed run (even one resumed
        // mid-epoch) draw exactly what the uninterrupted run drew.
        ft.manager().getEngine().setRandomSeed((int) (loaded.config().train().seed() * 1_000_003L + step));
        try {
            return ft.trainStep(x, y, lr, fromStage);
        } catch (FinetuneException e) {
            if (e.kind() == ErrorKind.DIVERGED) {
                throw new FinetuneException(ErrorKind.DIVERGED, "training diverged at epoch " + epoch + ", batch "
                        + (b + 1) + " (global step " + (step + 1) + "): " + e.getMessage() + ". "
                        + (java.nio.file.Files.exists(run.lastCheckpoint())
                                ? "The last good checkpoint is kept in " + run.lastCheckpoint().getParent()
                                : "No checkpoint was written yet; run again with the fix, the run directory "
                                        + run.root() + " is reused"));
            }
            throw e;
        }
    }

    /** On Ctrl-C / SIGTERM: write a resumable checkpoint at this step boundary and stop with 130 / 143. */
    private void checkStop(TrainContext ctx, int epoch, long step, int batchesDone, double lossSum) {
        ErrorKind why = StopSignal.requested();
        if (why == null) {
            return;
        }
        TrainState s = ctx.state();
        TrainState mid = s.at(epoch - 1, step, batchesDone).withEpochLossSum(lossSum);
        CheckpointListener.writeLast(ctx, mid);
        throw new FinetuneException(why, (why == ErrorKind.INTERRUPTED ? "interrupted" : "terminated")
                + " in epoch " + epoch + " after " + batchesDone + " batches; a resumable checkpoint is in "
                + run.lastCheckpoint() + ". Continue with: finetune train --resume " + run.root());
    }
}
