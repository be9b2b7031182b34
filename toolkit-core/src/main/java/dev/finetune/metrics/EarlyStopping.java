package dev.finetune.metrics;

import dev.finetune.ConfigException;
import dev.finetune.ErrorKind;
import dev.finetune.FinetuneException;

/**
 * Stops training once a metric has gone {@code patience} consecutive epochs without improving.
 *
 * <p>An epoch improves when it beats the best value so far by more than {@code minDelta} (Keras' rule), so slow
 * drift within noise does not keep a run alive. A NaN value never improves and counts as a bad epoch. To continue
 * after a resume, replay the logged values from {@code metrics.csv} through {@link #update} before the first new
 * epoch; the state is nothing more than that history.
 */
public final class EarlyStopping {
    private final MetricChoice metric;
    private final int patience;
    private final double minDelta;
    private double best = Double.NaN;
    private int epochsWithoutImprovement;

    /**
     * An early-stopping rule that has seen no epoch yet.
     *
     * @param metric what to watch
     * @param patience how many epochs in a row without improvement stop training (Keras' and Lightning's meaning):
     *     with 3, the third such epoch returns true; at least 1
     * @param minDelta the margin an epoch must beat the best by to count as an improvement, in the metric's units
     * @throws FinetuneException {@link ErrorKind#CONFIG} if patience is below 1, or minDelta negative or not finite
     */
    public EarlyStopping(MetricChoice metric, int patience, double minDelta) {
        this.metric = java.util.Objects.requireNonNull(metric, "metric");
        if (patience < 1) {
            throw new ConfigException(ConfigException.Part.EARLY_STOPPING, "patience", "must be >= 1, found " + patience);
        }
        if (!(minDelta >= 0) || Double.isInfinite(minDelta)) {
            throw new ConfigException(ConfigException.Part.EARLY_STOPPING, "min_delta", "must be a finite number >= 0, found " + minDelta);
        }
        this.patience = patience;
        this.minDelta = minDelta;
    }

    /**
     * Records one epoch's value.
     *
     * @return true if training should stop now
     */
    public boolean update(double value) {
        if (metric.improves(value, best, minDelta)) {
            best = value;
            epochsWithoutImprovement = 0;
            return false;
        }
        epochsWithoutImprovement++;
        return epochsWithoutImprovement >= patience;
    }

    /** The metric being watched. */
    public MetricChoice metric() {
        return metric;
    }

    /** The best value so far (the last one that improved by more than minDelta), NaN before any. */
    public double best() {
        return best;
    }

    /** How many epochs in a row have not improved. */
    public int epochsWithoutImprovement() {
        return epochsWithoutImprovement;
    }

    /** The configured patience. */
    public int patience() {
        return patience;
    }

    /** The configured minimum improvement. */
    public double minDelta() {
        return minDelta;
    }
}
