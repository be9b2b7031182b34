package dev.finetune.train;

import dev.finetune.metrics.MetricChoice;

/**
 * Stops the run when the chosen metric has not improved for {@code patience} epochs (for a validation metric with
 * {@code train.val_every} N > 1: for {@code patience} validations, N epochs apart).
 */
public final class EarlyStoppingListener implements TrainingListener {
    private final MetricChoice configured;
    private MetricChoice metric;
    private final int patience;
    private final double minDelta;

    /**
     * @param metric the metric watched (a {@code val_*} metric is replaced by train_loss when there is no validation)
     * @param patience epochs without improvement before stopping, >= 1
     * @param minDelta the smallest change that counts as an improvement, >= 0
     */
    public EarlyStoppingListener(MetricChoice metric, int patience, double minDelta) {
        if (patience < 1 || !(minDelta >= 0 && minDelta < Double.POSITIVE_INFINITY)) {
            throw new IllegalArgumentException("early stopping needs patience >= 1 and min delta >= 0, found "
                    + patience + " and " + minDelta);
        }
        this.configured = metric;
        this.metric = configured;
        this.patience = patience;
        this.minDelta = minDelta;
    }

    @Override
    public void onTrainStart(TrainContext ctx) {
        // Without a validation set a val_* metric is NaN every epoch and would never stop anything.
        metric = configured.orTrainLossWithout(ctx.hasValidation());
    }

    @Override
    public void onEpochEnd(TrainContext ctx, EpochSummary s) {
        double v = s.value(metric.name());
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
                    + (ctx.settings().valEvery() > 1 && metric.name().startsWith("val_")
                            ? " validations (every " + ctx.settings().valEvery() + " epochs)" : " epochs")
                    + " (best " + best + ")");
        }
    }
}
