package dev.finetune.metrics;

import dev.finetune.ConfigException;
import dev.finetune.ErrorKind;
import dev.finetune.FinetuneException;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/**
 * A logged metric chosen for early stopping or best-model selection, with the direction in which it improves.
 *
 * <p>The direction is inferred rather than configured, because getting it wrong is silent: stopping on
 * {@code val_loss} with "max" would keep the worst epoch. Losses improve downwards, accuracies upwards.
 *
 * @param name the column name in {@code metrics.csv}, e.g. {@code val_top1}
 * @param mode whether smaller or larger values are better
 */
public record MetricChoice(String name, Mode mode) {
    /** The config field that {@link #parse(String)} names in its error. */
    public static final String EARLY_STOPPING_FIELD = "train.early_stopping.metric";

    /** The metrics that can be chosen, in the order an error message lists them. */
    private static final Map<String, Mode> KNOWN = new LinkedHashMap<>();

    static {
        KNOWN.put("val_loss", Mode.MIN);
        KNOWN.put("val_top1", Mode.MAX);
        KNOWN.put("val_top5", Mode.MAX);
        KNOWN.put("val_macro_f1", Mode.MAX);
        KNOWN.put("train_loss", Mode.MIN);
    }

    /** Which way a metric improves. */
    public enum Mode {
        /** Smaller is better (losses). */
        MIN,
        /** Larger is better (accuracies). */
        MAX
    }

    /** Whether the metric is measured on the validation set ({@code val_*}). */
    public boolean needsValidation() {
        return name.startsWith("val_");
    }

    /**
     * This metric, or {@code train_loss} when it needs a validation set and there is none: a {@code val_*} metric
     * would be NaN every epoch, so no checkpoint would ever be "best" and early stopping would never act.
     */
    public MetricChoice orTrainLossWithout(boolean hasValidation) {
        return hasValidation || !needsValidation() ? this : new MetricChoice("train_loss", Mode.MIN);
    }

    /** Requires both parts; use {@link #parse} to get a known metric with its inferred mode. */
    public MetricChoice {
        if (name == null || name.isEmpty() || mode == null) {
            throw new IllegalArgumentException("a metric choice needs a name and a mode, found " + name + ", " + mode);
        }
    }

    /**
     * Parses a metric name from the early-stopping config; an error names {@value #EARLY_STOPPING_FIELD}.
     *
     * @throws FinetuneException {@link ErrorKind#CONFIG} if the metric is unknown
     */
    public static MetricChoice parse(String value) {
        return parse(EARLY_STOPPING_FIELD, value);
    }

    /**
     * Parses a metric name; leading/trailing blanks and case are ignored.
     *
     * @param field the config path the value came from, so the error points at it (e.g.
     *     {@code checkpoint.best_metric})
     * @param value the metric name, e.g. {@code val_top1}
     * @throws FinetuneException {@link ErrorKind#CONFIG} if the metric is unknown
     */
    public static MetricChoice parse(String field, String value) {
        String key = value == null ? "" : value.strip().toLowerCase(Locale.ROOT);
        Mode mode = KNOWN.get(key);
        if (mode == null) {
            throw new ConfigException("", field + ": unknown metric '" + value + "'; known: "
                    + String.join(", ", KNOWN.keySet()));
        }
        return new MetricChoice(key, mode);
    }

    /** The metric names {@link #parse} accepts. */
    public static java.util.List<String> knownNames() {
        return java.util.List.copyOf(KNOWN.keySet());
    }

    /**
     * Whether {@code candidate} beats {@code reference} by more than {@code minDelta}. NaN never improves on anything
     * (a diverged epoch must not become "best"), and anything finite improves on NaN, the value before the first
     * epoch.
     */
    public boolean improves(double candidate, double reference, double minDelta) {
        if (Double.isNaN(candidate)) {
            return false;
        }
        if (Double.isNaN(reference)) {
            return true;
        }
        return mode == Mode.MIN ? candidate < reference - minDelta : candidate > reference + minDelta;
    }
}
