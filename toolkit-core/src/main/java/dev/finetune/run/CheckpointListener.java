package dev.finetune.run;

import dev.finetune.metrics.MetricChoice;
import dev.finetune.train.FineTuner;
import dev.finetune.train.TrainContext;
import dev.finetune.train.TrainState;
import dev.finetune.train.TrainingListener;

/**
 * Writes {@code checkpoints/last.safetensors} after every epoch (weights, optimizer state, schedule position, freeze
 * state), on Ctrl-C / SIGTERM and at each recovery point ({@code train.recovery_interval}), and
 * {@code best.safetensors} when the chosen metric improves. Both are written atomically, so a crash or a
 * full disk mid-write leaves the previous file intact.
 */
public final class CheckpointListener implements TrainingListener {
    private final RunDirectory run;
    private final MetricChoice configured;
    private final String configYaml;
    private final RunTime.Clock clock;
    private MetricChoice bestMetric;

    /**
     * @param run the run folder
     * @param bestMetric the metric that picks {@code best.safetensors}
     * @param configYaml the resolved config, kept in every checkpoint's metadata
     * @param clock the run's wall time and peak memory so far, kept in every checkpoint so that a resumed run's summary
     *     covers all its segments
     */
    public CheckpointListener(RunDirectory run, String bestMetric, String configYaml, RunTime.Clock clock) {
        this.run = run;
        this.configured = MetricChoice.parse("train.best_metric", bestMetric);
        this.bestMetric = configured;
        this.configYaml = configYaml;
        this.clock = clock;
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
        double value = s.value(bestMetric.name());
        TrainState state = ctx.state();
        boolean improved = !Double.isNaN(value)
                && (Double.isNaN(state.best()) || bestMetric.improves(value, state.best(), 0));
        if (improved) {
            state = state.withBest(value, s.epoch());
            ctx.setState(state);
            write(ctx, run.bestCheckpoint(), state, false);
        }
        write(ctx, run.lastCheckpoint(), state, true);
        if (ctx.ema() != null) {
            // The averaged weights as a model of their own: predict, evaluate and export take it like best.
            TrainState at = state;
            ctx.ema().withAveragedWeights(ctx.fineTuner(), () -> {
                write(ctx, run.root().resolve("checkpoints").resolve("ema.safetensors"), at, false);
                return null;
            });
        }
    }

    @Override
    public String onInterrupt(TrainContext ctx, TrainState resumable) {
        write(ctx, run.lastCheckpoint(), resumable, true);
        return "a resumable checkpoint is in " + run.lastCheckpoint() + ". Continue with: finetune train --resume "
                + run.root();
    }

    @Override
    public void onRecoveryPoint(TrainContext ctx, TrainState resumable) {
        write(ctx, run.lastCheckpoint(), resumable, true);
    }

    @Override
    public String onDiverged(TrainContext ctx) {
        return java.nio.file.Files.exists(run.lastCheckpoint())
                ? "The last good checkpoint is kept in " + run.lastCheckpoint().getParent()
                : "No checkpoint was written yet; run again with the fix, the run directory " + run.root()
                        + " is reused";
    }

    private void write(TrainContext ctx, java.nio.file.Path file, TrainState state, boolean withOptimizer) {
        FineTuner ft = ctx.fineTuner();
        TrainingCheckpoint.write(file, ft, new TrainingCheckpoint.Meta(
                ft.model().arch().configName(),
                ctx.classNames(),
                TrainingCheckpoint.Preprocessing.of(ctx.data().transforms()),
                state,
                configYaml,
                ft.optimizer().settings().name(),
                clock.now()), withOptimizer, "F32",
                ctx.ema() == null || !withOptimizer ? java.util.Map.of() : ctx.ema().stateEntries());
    }
}
