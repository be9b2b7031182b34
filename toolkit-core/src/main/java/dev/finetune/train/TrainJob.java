package dev.finetune.train;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.finetune.Versions;
import dev.finetune.config.ConfigLoader;
import dev.finetune.model.FastPathReport;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * {@code finetune train} as a library call: a run directory with the resolved config, provenance, metrics, plots,
 * checkpoints and a summary.
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
    public record Result(Path runDir, TrainState state, Map<String, Object> summary) {}

    /** Starts a new run of {@code config} in {@code runDir}. */
    public static Result start(ConfigLoader.Loaded config, Path runDir, List<TrainingListener> extra) {
        // The data, the checkpoint and the model are checked before the folder exists: a mistake leaves nothing.
        try (Trainer.Prepared prepared = Trainer.prepare(config, null);
                RunDirectory run = RunDirectory.create(runDir)) {
            run.writeText("config.yaml", yaml(config));
            return go(config, run, extra, null, prepared);
        }
    }

    /**
     * Continues the run in {@code runDir} from its last checkpoint, with the config saved there; a run that stopped
     * before its first checkpoint starts again from the beginning.
     */
    public static Result resume(Path runDir, List<String> sets, List<TrainingListener> extra) {
        try (RunDirectory run = RunDirectory.existing(runDir)) {
            ConfigLoader.Loaded config = ConfigLoader.load(run.config(), sets);
            TrainingCheckpoint.Loaded last = run.started() ? TrainingCheckpoint.read(run.lastCheckpoint()) : null;
            try (Trainer.Prepared prepared = Trainer.prepare(config, last)) {
                return go(config, run, extra, last, prepared);
            }
        }
    }

    private static Result go(ConfigLoader.Loaded config, RunDirectory run, List<TrainingListener> extra,
            TrainingCheckpoint.Loaded resume, Trainer.Prepared prepared) {
        long t0 = System.nanoTime();
        List<TrainingListener> listeners = new ArrayList<>();
        if (config.config().train().earlyStopping() != null) {
            listeners.add(new EarlyStoppingListener(config.config().train().earlyStopping()));
        }
        CheckpointListener checkpoints = new CheckpointListener(config.config().train().bestMetric());
        listeners.add(checkpoints);
        listeners.add(new MetricsListener());
        listeners.addAll(extra);
        RunInfoListener info = new RunInfoListener(resume != null, checkpoints);
        listeners.add(info);
        TrainState state = new Trainer(config, run, listeners, resume, prepared).fit();
        Map<String, Object> summary = info.summary(state, (System.nanoTime() - t0) / 1e9);
        run.writeText("summary.json", json(summary));
        return new Result(run.root(), state, summary);
    }

    /** Writes run.json at the start and collects the summary. */
    private static final class RunInfoListener implements TrainingListener {
        private final boolean resumed;
        private final Map<String, Object> summary = new LinkedHashMap<>();
        private TrainContext ctx;
        private Map<String, Object> info;
        private String infoFile;

        private final CheckpointListener checkpoints;

        RunInfoListener(boolean resumed, CheckpointListener checkpoints) {
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
            info.put("seed", ctx.config().config().train().seed());
            info.put("data", ctx.data().description());
            info.put("data_fingerprint", ctx.data().fingerprint());
            info.put("classes", ctx.classNames());
            info.put("train_images", ctx.data().train().size());
            info.put("val_images", ctx.data().val() == null ? 0 : ctx.data().val().size());
            info.put("checkpoint_load", ctx.fineTuner().loadReport() == null ? "from scratch"
                    : ctx.fineTuner().loadReport().summary());
            info.put("policy", ctx.fineTuner().plan().policy().describe());
            info.put("trainable_params", ctx.fineTuner().plan().trainableParameterCount());
            info.put("frozen_params", ctx.fineTuner().plan().frozenParameterCount());
            this.info = info;
            this.infoFile = resumed ? "run-resumed-" + ctx.state().epochsCompleted() + ".json" : "run.json";
            writeInfo();
        }

        /** run.json with the fast-path guard's report as it stands (what runs, what was checked, any fallback). */
        private void writeInfo() {
            info.put("fast_path", ctx.fineTuner().fastPathReports().stream().map(FastPathReport::toMap).toList());
            ctx.run().writeText(infoFile, json(info));
        }

        @Override
        public void onTrainEnd(TrainContext ctx) {
            writeInfo();
        }

        @Override
        public void onEpochEnd(TrainContext ctx, EpochSummary s) {
            summary.put("last_epoch", s.epoch());
            summary.put("train_loss", s.trainLoss());
            if (s.val() != null) {
                summary.put("val_loss", s.val().loss());
                summary.put("val_top1", s.val().top1());
                summary.put("val_top5", s.val().top5());
            }
            summary.put("images_per_second", s.imagesPerSecond());
        }

        Map<String, Object> summary(TrainState state, double seconds) {
            Map<String, Object> out = new LinkedHashMap<>();
            out.put("epochs_completed", state.epochsCompleted());
            out.put("global_step", state.globalStep());
            out.putAll(summary);
            out.put("best_metric", checkpoints.metric().name());
            out.put("best_value", Double.isNaN(state.best()) ? null : state.best());
            out.put("best_epoch", state.bestEpoch() == 0 ? null : state.bestEpoch());
            out.put("best_checkpoint", state.bestEpoch() == 0 ? null
                    : ctx.run().root().relativize(ctx.run().bestCheckpoint()).toString());
            out.put("validation", ctx.hasValidation());
            out.put("stopped_early", ctx.stopReason());
            out.put("frozen_tensors_bit_identical", ctx.frozenVerified());
            out.put("feature_cache_used", ctx.featureCacheUsed());
            out.put("feature_cache_build_seconds", ctx.cacheBuildSeconds());
            out.put("skipped_images", ctx.data().skipped().files());
            out.put("wall_seconds", seconds);
            out.put("peak_rss_bytes", dev.finetune.predict.MemoryUse.peakRssBytes());
            return out;
        }
    }

    private static void absolutize(ConfigLoader.Loaded c, com.fasterxml.jackson.databind.node.ObjectNode tree,
            String section, String key) {
        var node = tree.get(section);
        if (node instanceof com.fasterxml.jackson.databind.node.ObjectNode obj && obj.get(key) != null
                && obj.get(key).isTextual()) {
            String v = obj.get(key).asText();
            if (!v.equals("none") && !v.startsWith("torchvision:")) {
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
