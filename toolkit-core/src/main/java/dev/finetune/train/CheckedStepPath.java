package dev.finetune.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.Shape;
import dev.finetune.engine.Warnings;
import dev.finetune.model.FastPathReport;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * A faster way to run the autograd part of a training step (channels-last, bf16 mixed precision) and the guard that
 * keeps it honest on this host: the first step of every input shape, and then every {@link #CHECK_EVERY}-th step, runs
 * twice on the same batch from the same state — the reference way, then this one — and {@link FineTuner} compares the
 * loss, the gradient of every top-level module and the BatchNorm running statistics. Within this path's tolerances the
 * step keeps this path's result; otherwise the reference result, this path is off for the rest of the fine-tuner's
 * life, a warning says why once, and {@link #report()} records it. It owns its state: the shapes checked, the step
 * count, the fallback.
 */
abstract class CheckedStepPath {
    /** A periodic re-check every this many steps (besides the first step of each input shape). */
    static final long CHECK_EVERY = 500;

    private final String name;
    private final String reference;
    private final double lossTolerance;
    private final double gradTolerance;
    private final double statTolerance;
    private final Set<Shape> verified = new HashSet<>();
    private final List<FastPathReport.Check> checks = new ArrayList<>();
    private final List<String> fallbacks = new ArrayList<>();
    private boolean failed;
    private long steps;
    private long checkEvery = CHECK_EVERY;
    /** Periodic checks so far, and the index in {@link #checks} of the latest passed one (-1: none). */
    private long periodicChecks;
    private int lastPeriodic = -1;

    /**
     * @param name this path in words ({@code channels-last})
     * @param reference the path it is checked against ({@code NCHW})
     * @param lossTolerance the loss's bound, relative to {@code max(1, |loss|)}
     * @param gradTolerance each top-level module's gradient's bound, relative L2
     * @param statTolerance each running statistic's bound, relative to {@code max(1, |value|)}
     */
    CheckedStepPath(String name, String reference, double lossTolerance, double gradTolerance,
            double statTolerance) {
        this.name = name;
        this.reference = reference;
        this.lossTolerance = lossTolerance;
        this.gradTolerance = gradTolerance;
        this.statTolerance = statTolerance;
    }

    /** Whether a failed check switched this path off. */
    final boolean failed() {
        return failed;
    }

    /** The period of the re-check. */
    final long checkEvery() {
        return checkEvery;
    }

    /** What was asked for, in the report's title ({@code channels-last (auto)}). */
    abstract String asked();

    /** Counts a step on this path and says whether it must be checked against the reference. */
    final boolean checkDue(Shape x) {
        steps++;
        return !verified.contains(x) || steps % checkEvery == 0;
    }

    /** Sets the period of the re-check (tests). */
    final void checkEvery(long period) {
        if (period < 1) {
            throw new IllegalArgumentException("period must be >= 1, found " + period);
        }
        checkEvery = period;
    }

    /**
     * Records one check.
     *
     * @param lossRef the reference loss
     * @param loss this path's loss
     * @param worstGrad the worst relative L2 difference of a module's gradient
     * @param worstModule that module
     * @param worstStat the worst elementwise running-statistic difference over {@code max(1, |value|)}
     * @return whether this path passed (if not, it is off from now on)
     */
    final boolean record(Shape x, float lossRef, float loss, double worstGrad, String worstModule, double worstStat) {
        double lossDiff = Math.abs(lossRef - loss) / Math.max(1, Math.abs(lossRef));
        boolean ok = lossDiff <= lossTolerance && worstGrad <= gradTolerance && worstStat <= statTolerance
                && Float.isFinite(loss);
        boolean periodic = verified.contains(x);
        if (periodic) {
            periodicChecks++;
        }
        FastPathReport.Check check = new FastPathReport.Check(x, String.format(Locale.ROOT,
                "training step %s vs %s%s: loss %.3g, gradient %.3g (%s), running statistics %.3g", name, reference,
                periodic ? " (periodic check " + periodicChecks + ", step " + steps + ")" : "", lossDiff, worstGrad,
                worstModule, worstStat), worstGrad, 1, List.of(), ok);
        // A passed periodic check replaces the previous one, so that a long run's report stays short: the first check
        // of each shape, the latest periodic one, and any failure.
        if (ok && periodic && lastPeriodic >= 0) {
            checks.set(lastPeriodic, check);
        } else {
            checks.add(check);
            lastPeriodic = ok && periodic ? checks.size() - 1 : lastPeriodic;
        }
        if (ok) {
            verified.add(x);
            return true;
        }
        failed = true;
        String why = String.format(Locale.ROOT, "%s training differs from %s on this host at input %s"
                + " (loss rel. diff %.3g, gradient of %s rel. diff %.3g, running statistics %.3g; tolerance %.0e for"
                + " the loss, %.0e for gradients, %.0e for statistics); training steps run %s from now on (slower)",
                name, reference, x, lossDiff, worstModule, worstGrad, worstStat, lossTolerance, gradTolerance,
                statTolerance, reference);
        fallbacks.add(why);
        Warnings.warnOnce(name + "-training", why);
        return false;
    }

    /** What was asked, what runs, every check; null while this path has never been checked. */
    final FastPathReport report() {
        if (checks.isEmpty()) {
            return null;
        }
        String inUse = failed ? "training steps: " + reference + " (" + name + " switched off)"
                : "training steps: " + name + " for " + verified;
        return new FastPathReport("training steps: " + asked(), inUse, List.copyOf(checks), List.copyOf(fallbacks),
                "loss within " + lossTolerance + " * max(1, |loss|), running statistics within " + statTolerance
                        + " * max(1, |value|); each module's gradient within " + gradTolerance + " relative L2");
    }

    /** Relative L2 difference {@code |a - b| / |b|}, from sums of squares; 0 when both are 0. */
    static double relative(double diffSq, double refSq) {
        if (diffSq == 0) {
            return 0;
        }
        return Math.sqrt(diffSq / Math.max(refSq, 1e-30));
    }

    /** Sum of squares of {@code a}, in float64. */
    static double sumSq(NDArray a) {
        return a.toType(ai.djl.ndarray.types.DataType.FLOAT64, false).square().sum().getDouble();
    }
}
