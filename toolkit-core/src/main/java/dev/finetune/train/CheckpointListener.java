package dev.finetune.train;

import dev.finetune.config.ConfigLoader;
import dev.finetune.metrics.MetricChoice;
import com.fasterxml.jackson.core.JsonProcessingException;

/**
 * Writes {@code checkpoints/last.safetensors} after every epoch (weights, optimizer state, schedule position, freeze
 * state) and {@code best.safetensors} when the chosen metric improves. Both are written atomically, so a crash or a
 * full disk mid-write leaves the previous file intact.
 */
public final class CheckpointListener implements TrainingListener {
    private final MetricChoice configured;
    private MetricChoice bestMetric;

    public CheckpointListener(String bestMetric) {
        this.configured = MetricChoice.parse("train.best_metric", bestMetric);
        this.bestMetric = configured;
    }

    @Override
    public void onTrainStart(TrainContext ctx) {
        bestMetric = configured.orTrainLossWithout(ctx.hasValidation());
    }

    /** The metric that picks the best checkpoint: the configured one, or train_loss when there is no validation. */
    public MetricChoice metric() {
        return bestMetric;
    }

    @Override
    public void onEpochEnd(TrainContext ctx, EpochSummary s) {
        double value = valueOf(bestMetric.name(), s);
        TrainState state = ctx.state();
        boolean improved = !Double.isNaN(value)
                && (Double.isNaN(state.best()) || bestMetric.improves(value, state.best(), 0));
        if (improved) {
            state = state.withBest(value, s.epoch());
            ctx.setState(state);
            write(ctx, ctx.run().bestCheckpoint(), state, false);
        }
        writeLast(ctx, state);
    }

    /** Writes the resumable {@code last} checkpoint for {@code state}. */
    static void writeLast(TrainContext ctx, TrainState state) {
        write(ctx, ctx.run().lastCheckpoint(), state, true);
    }

    private static void write(TrainContext ctx, java.nio.file.Path file, TrainState state, boolean withOptimizer) {
        FineTuner ft = ctx.fineTuner();
        String yaml;
        try {
            yaml = ConfigLoader.yaml().writeValueAsString(ctx.config().tree());
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
        TrainingCheckpoint.write(file, ft, new TrainingCheckpoint.Meta(
                ft.model().arch().configName(),
                ctx.classNames(),
                TrainingCheckpoint.Preprocessing.of(ctx.data().transforms()),
                state,
                yaml,
                ft.optimizer().settings().name()), withOptimizer, "F32");
    }

    /** A metric's value in an epoch summary (NaN when not measured). */
    static double valueOf(String metric, EpochSummary s) {
        return switch (metric) {
            case "train_loss" -> s.trainLoss();
            case "val_loss" -> s.val() == null ? Double.NaN : s.val().loss();
            case "val_top1" -> s.val() == null ? Double.NaN : s.val().top1();
            case "val_top5" -> s.val() == null ? Double.NaN : s.val().top5();
            default -> Double.NaN;
        };
    }
}
