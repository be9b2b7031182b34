package dev.finetune.run;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.finetune.ErrorKind;
import dev.finetune.FinetuneException;
import dev.finetune.Versions;
import dev.finetune.config.ConfigLoader;
import dev.finetune.config.TrainConfig;
import dev.finetune.model.FastPathReport;
import dev.finetune.train.FineTuner;
import dev.finetune.train.TrainContext;
import dev.finetune.train.TrainState;
import dev.finetune.train.Trainer;
import dev.finetune.train.TrainingData;
import dev.finetune.train.TrainingListener;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * {@code finetune train} as a library call: a config, assembled ({@link Assembler}) and trained ({@link Trainer}) into
 * a run directory with the resolved config, provenance, metrics, plots, checkpoints and a summary.
 */
public final class TrainJob {
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    private TrainJob() {}

    /**
     * The outcome.
     *
     * @param runDir the run folder
     * @param state final state
     * @param summary what {@code summary.json} holds
     */
    public record Result(Path runDir, TrainState state, RunSummary summary) {}

    /** Starts a new run of {@code config} in {@code runDir}. */
    public static Result start(ConfigLoader.Loaded config, Path runDir, List<TrainingListener> extra) {
        // The data, the checkpoint and the model are built before the folder exists: a mistake leaves nothing.
        TrainingData data = Assembler.data(config);
        Result r;
        try (FineTuner ft = Assembler.fineTuner(config, Assembler.checkpoint(config), data)) {
            String store = config.config().train().featureStore();
            if (store != null && config.config().train().featureCache()) {
                // Its key is checked now, before the folder exists; the trainer reads it on the first epoch.
                dev.finetune.store.FeatureStore.checkKey(config.resolve(store), ft, data,
                        Trainer.deterministicPrefixEnd(ft, data, "train.feature_store"));
            }
            try (RunDirectory run = RunDirectory.create(runDir)) {
                run.writeText("config.yaml", yaml(config));
                r = go(config, run, extra, null, ft, data);
            }
        }
        if (config.config().train().report()) {
            report(r.runDir(), data);
        }
        return r;
    }

    /**
     * Writes the run's {@code report.html} once training is over (its model closed). The run is complete without it,
     * so a failure here is a warning that says how to rebuild it, not a failed run.
     */
    private static void report(Path runDir, TrainingData data) {
        try {
            dev.finetune.report.RunReport.write(runDir, data);
        } catch (RuntimeException e) {
            dev.finetune.engine.Warnings.warnOnce("report:" + runDir, "warning: " + runDir.resolve(
                    dev.finetune.report.RunReport.FILE) + " not written (" + e.getMessage() + "); the run itself is"
                    + " complete; rebuild the report with: finetune report " + runDir);
        }
    }

    /**
     * Continues the run in {@code runDir} from its last checkpoint, with the config saved there edited by
     * {@code sets} (which are written back to the run's {@code config.yaml} once the edited config has built a
     * model, so that they last); a run that stopped before its first checkpoint starts again from the beginning.
     */
    public static Result resume(Path runDir, List<String> sets, List<TrainingListener> extra) {
        try (RunDirectory run = RunDirectory.existing(runDir)) {
            ConfigLoader.Loaded config = ConfigLoader.load(run.config(), sets);
            TrainingCheckpoint.Loaded last = run.started() ? TrainingCheckpoint.read(run.lastCheckpoint()) : null;
            if (last != null) {
                refuseFinished(run.root(), config, last.meta().state());
            }
            TrainingData data = Assembler.data(config);
            Result r;
            try (FineTuner ft = last != null
                    ? Assembler.resumedFineTuner(config, last, data)
                    : Assembler.fineTuner(config, Assembler.checkpoint(config), data)) {
                if (!sets.isEmpty()) {
                    // The edits hold for the rest of the run, not just this process: a later --resume without them
                    // must not fall back to, say, the old train.epochs.
                    run.writeText("config.yaml", yaml(config));
                }
                r = go(config, run, extra, last, ft, data);
            }
            if (config.config().train().report()) {
                report(r.runDir(), data);
            }
            return r;
        }
    }

    /**
     * A run whose last checkpoint already ended it (all its epochs, or early stopping) has nothing left to train:
     * continuing would only start an empty segment and rewrite its summary. Refused before anything is built, with
     * the setting that extends it. (A run stopped between its last checkpoint and its summary may go on: it only
     * writes the summary.)
     */
    private static void refuseFinished(Path root, ConfigLoader.Loaded config, TrainState state) {
        if (state.batchesIntoEpoch() != 0 || !Files.exists(root.resolve(RunSummary.FILE))) {
            return;
        }
        int epochs = config.config().train().epochs();
        int done = state.epochsCompleted();
        if (done >= epochs) {
            throw new FinetuneException(ErrorKind.OUTPUT, "the run in " + root + " already finished: it has trained "
                    + done + " epochs and train.epochs is " + epochs + " (results in " + RunSummary.FILE
                    + "); to train it longer, resume with --set train.epochs=N (N > " + done
                    + "), or start a new run in another --run-dir");
        }
        TrainConfig.EarlyStoppingConfig es = config.config().train().earlyStopping();
        if (es != null && state.epochsWithoutImprovement() >= es.patience()) {
            throw new FinetuneException(ErrorKind.OUTPUT, "the run in " + root
                    + " already finished: early stopping ended it after epoch " + done + " (" + es.metric()
                    + " had not improved " + state.epochsWithoutImprovement() + " times in a row; results in "
                    + RunSummary.FILE + "); to go on, resume with --set train.early_stopping.patience=N (N > "
                    + state.epochsWithoutImprovement() + "), or start a new run in another --run-dir");
        }
    }

    private static Result go(ConfigLoader.Loaded config, RunDirectory run, List<TrainingListener> extra,
            TrainingCheckpoint.Loaded resume, FineTuner ft, TrainingData data) {
        RunTime.Clock clock = RunTime.start(resume == null ? null : resume.meta().runTime());
        CheckpointListener checkpoints = new CheckpointListener(run, config.config().train().bestMetric(),
                yaml(config), clock);
        RunInfoListener info = new RunInfoListener(run, resume != null, checkpoints);
        List<TrainingListener> listeners = new ArrayList<>(Assembler.configuredListeners(config));
        listeners.add(checkpoints);
        listeners.add(new MetricsListener(run));
        listeners.addAll(extra);
        listeners.add(info);
        Trainer.Builder b = Assembler.trainer(config, ft, data).listeners(listeners);
        if (resume != null) {
            b.resume(resume.meta().state(), resume.optimizerState());
        }
        TrainState state = b.build().fit();
        RunSummary summary = info.summary(state, clock.now());
        run.writeText(RunSummary.FILE, summary.toJson());
        return new Result(run.root(), state, summary);
    }

    /** Writes run.json (at the start, once the fast path is checked, and at the end) and collects the summary. */
    private static final class RunInfoListener implements TrainingListener {
        private final RunDirectory run;
        private final boolean resumed;
        private final CheckpointListener checkpoints;
        private TrainContext ctx;
        private Map<String, Object> info;
        private String infoFile;
        private EpochSummary last;

        RunInfoListener(RunDirectory run, boolean resumed, CheckpointListener checkpoints) {
            this.run = run;
            this.resumed = resumed;
            this.checkpoints = checkpoints;
        }

        @Override
        public void onTrainStart(TrainContext ctx) {
            this.ctx = ctx;
            Map<String, Object> info = new LinkedHashMap<>();
            info.put("format_version", 1);
            info.put("started", Instant.now().toString());
            info.put("resumed_from_epoch", resumed ? ctx.state().epochsCompleted() : null);
            info.put("versions", Versions.all());
            info.put("engine", ctx.fineTuner().manager().getEngine().getEngineName() + " "
                    + ctx.fineTuner().manager().getEngine().getVersion());
            info.put("seed", ctx.settings().seed());
            info.put("data", ctx.data().description());
            info.put("data_fingerprint", ctx.data().fingerprint());
            info.put("classes", ctx.classNames());
            info.put("train_images", ctx.data().train().size());
            info.put("val_images", ctx.data().val() == null ? 0 : ctx.data().val().size());
            info.put("checkpoint_load", ctx.fineTuner().loadReport() == null ? "from scratch"
                    : ctx.fineTuner().loadReport().summary());
            this.info = info;
            this.infoFile = resumed ? "run-resumed-" + ctx.state().epochsCompleted() + ".json" : "run.json";
            writeInfo();
        }

        /** run.json with the plan and the fast-path guard's report as they stand. */
        private void writeInfo() {
            info.put("policy", ctx.fineTuner().plan().policy().describe());
            info.put("trainable_params", ctx.fineTuner().plan().trainableParameterCount());
            info.put("frozen_params", ctx.fineTuner().plan().frozenParameterCount());
            info.put("fast_path", ctx.fineTuner().fastPathReports().stream().map(FastPathReport::toMap).toList());
            info.put("huge_pages", dev.finetune.engine.HugePages.describe());
            info.put("malloc", dev.finetune.engine.MallocPolicy.describe());
            run.writeText(infoFile, json(info));
        }

        @Override
        public void onEpochStart(TrainContext ctx, int epoch, int batches) {
            writeInfo(); // the fast path of this epoch's plan has been checked by now
        }

        @Override
        public void onTrainEnd(TrainContext ctx) {
            writeInfo();
        }

        @Override
        public void onEpochEnd(TrainContext ctx, EpochSummary s) {
            last = s;
        }

        RunSummary summary(TrainState state, RunTime time) {
            boolean val = last != null && last.val() != null;
            return new RunSummary(
                    state.epochsCompleted(),
                    state.globalStep(),
                    last == null ? null : last.epoch(),
                    last == null ? null : last.trainLoss(),
                    val ? last.val().loss() : null,
                    val ? last.val().top1() : null,
                    val ? last.val().top5() : null,
                    last == null ? null : last.imagesPerSecond(),
                    checkpoints.metric().name(),
                    Double.isNaN(state.best()) ? null : state.best(),
                    state.bestEpoch() == 0 ? null : state.bestEpoch(),
                    state.bestEpoch() == 0 ? null : run.root().relativize(run.bestCheckpoint()).toString(),
                    ctx.hasValidation(),
                    ctx.stopReason(),
                    ctx.frozenVerified(),
                    ctx.featureCacheUsed(),
                    ctx.cacheBuildSeconds(),
                    ctx.data().skipped().files(),
                    time.seconds(),
                    time.peakRssBytes(),
                    time.segments(),
                    ctx.fineTuner().plan().policy().describe(),
                    ctx.fineTuner().plan().trainableParameterCount());
        }
    }

    private static void absolutize(ConfigLoader.Loaded c, com.fasterxml.jackson.databind.node.ObjectNode tree,
            String section, String key) {
        var node = tree.get(section);
        if (node instanceof com.fasterxml.jackson.databind.node.ObjectNode obj && obj.get(key) != null
                && obj.get(key).isTextual()) {
            String v = obj.get(key).asText();
            if (!v.equals("none") && !v.startsWith("torchvision:")
                    && !v.startsWith(dev.finetune.checkpoint.Checkpoints.EXPERIMENT_SCHEME)) {
                obj.put(key, c.resolve(v).toString());
            }
        }
    }

    static String json(Object o) {
        try {
            return JSON.writeValueAsString(o);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    /** The resolved config with its relative paths made absolute, so it still works from the run folder. */
    static String yaml(ConfigLoader.Loaded c) {
        com.fasterxml.jackson.databind.node.ObjectNode tree = c.tree().deepCopy();
        absolutize(c, tree, "model", "checkpoint");
        absolutize(c, tree, "data", "root");
        if (tree.get("data") != null && tree.get("data").get("idx") != null) {
            absolutize(c, (com.fasterxml.jackson.databind.node.ObjectNode) tree.get("data"), "idx", "dir");
        }
        try {
            return ConfigLoader.yaml().writeValueAsString(tree);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }
}
