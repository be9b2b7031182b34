package dev.finetune.train;

import dev.finetune.config.TrainConfig;
import dev.finetune.metrics.MetricChoice;

/** Stops the run when the chosen metric has not improved for {@code patience} epochs. */
public final class EarlyStoppingListener implements TrainingListener {
    private final MetricChoice configured;
    private MetricChoice metric;
    private final int patience;
    private final double minDelta;

    public EarlyStoppingListener(TrainConfig.EarlyStoppingConfig config) {
        this.configured = MetricChoice.parse(config.metric());
        this.metric = configured;
        this.patience = config.patience();
        this.minDelta = config.minDelta();
    }

    @Override
    public void onTrainStart(TrainContext ctx) {
        // Without a validation set a val_* metric is NaN every epoch and would never stop anything.
        metric = configured.orTrainLossWithout(ctx.hasValidation());
    }

    @Override
    public void onEpochEnd(TrainContext ctx, EpochSummary s) {
        double v = CheckpointListener.valueOf(metric.name(), s);
        if (Double.isNaN(v)) {
            return;
        }
        TrainState st = ctx.state();
        double best = st.earlyStoppingBest();
        if (Double.isNaN(best) || metric.improves(v, best, minDelta)) {
            ctx.setState(st.withEarlyStopping(v, 0));
            return;
        }
        int without = st.epochsWithoutImprovement() + 1;
        ctx.setState(st.withEarlyStopping(best, without));
        if (without >= patience) {
            ctx.requestStop("early stopping: " + metric.name() + " has not improved for " + without
                    + " epochs (best " + best + ")");
        }
    }
}
