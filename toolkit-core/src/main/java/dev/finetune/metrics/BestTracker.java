package dev.finetune.metrics;

/**
 * Remembers the best value of a metric so far, to decide when to save the best model.
 *
 * <p>Only a strict improvement counts: on a tie the earlier epoch stays best, since it reached the value with less
 * training. To continue after a resume, replay the logged values from {@code metrics.csv} through
 * {@link #isImprovement} before the first new epoch.
 */
public final class BestTracker {
    private final MetricChoice metric;
    private double best = Double.NaN;

    /** A tracker that has seen nothing yet. */
    public BestTracker(MetricChoice metric) {
        this.metric = java.util.Objects.requireNonNull(metric, "metric");
    }

    /** The metric being tracked. */
    public MetricChoice metric() {
        return metric;
    }

    /**
     * Whether {@code value} is better than every value seen so far; if so it becomes the new best. The first
     * non-NaN value is always an improvement; NaN never is.
     */
    public boolean isImprovement(double value) {
        if (metric.improves(value, best, 0.0)) {
            best = value;
            return true;
        }
        return false;
    }

    /** The best value so far, NaN before the first non-NaN value. */
    public double best() {
        return best;
    }
}
