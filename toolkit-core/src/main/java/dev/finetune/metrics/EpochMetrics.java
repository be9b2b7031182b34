package dev.finetune.metrics;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * What one pass over a data set measured. Accuracies are fractions in [0, 1], not percentages.
 *
 * <p>The arrays are copied on the way in and on the way out, so an instance never changes after it is built.
 *
 * @param loss mean loss over the samples passed to {@link ClassificationMetrics#addLoss}; NaN if none were
 * @param top1 fraction of samples whose highest logit is their label; NaN if there were no samples
 * @param top5 fraction of samples whose label is among their {@code topK} highest logits; NaN if there were no
 *     samples
 * @param topK the K that {@code top5} was measured with: {@code min(5, classes)}, so that with three classes the
 *     column still exists (and is trivially 1.0) rather than being undefined
 * @param perClassAccuracy for each true class, the fraction of its samples predicted as that class (its recall);
 *     NaN for a class with no samples, which {@link #formatFraction} shows as {@code n/a}
 * @param confusion {@code confusion[t][p]} counts samples of true class {@code t} predicted as {@code p}
 * @param samples how many samples were measured
 */
public record EpochMetrics(
        double loss, double top1, double top5, int topK, double[] perClassAccuracy, long[][] confusion, long samples) {

    /** Validates the shapes and takes private copies of the arrays. */
    public EpochMetrics {
        int classes = perClassAccuracy.length;
        if (confusion.length != classes) {
            throw new IllegalArgumentException(
                    "confusion matrix has " + confusion.length + " rows, expected " + classes + " (one per class)");
        }
        for (int t = 0; t < classes; t++) {
            if (confusion[t].length != classes) {
                throw new IllegalArgumentException("confusion matrix row " + t + " has " + confusion[t].length
                        + " columns, expected " + classes);
            }
        }
        perClassAccuracy = perClassAccuracy.clone();
        confusion = deepCopy(confusion);
    }

    /** A copy of the per-class accuracies, indexed by class. */
    @Override
    public double[] perClassAccuracy() {
        return perClassAccuracy.clone();
    }

    /** A copy of the confusion matrix: rows are true classes, columns are predicted classes. */
    @Override
    public long[][] confusion() {
        return deepCopy(confusion);
    }

    /** Precision, recall, F1 and support of every class, in class order ({@link ClassScores}). */
    public List<ClassScores> classScores() {
        return ClassScores.of(confusion);
    }

    /** Macro and weighted averages of the class scores. */
    public ClassScores.Averages averages() {
        return ClassScores.Averages.of(classScores());
    }

    /** The unweighted mean F1 over classes (scikit-learn's {@code f1_score(average="macro")}). */
    public double macroF1() {
        return averages().macroF1();
    }

    /**
     * The class scores keyed by class name, in class order.
     *
     * @throws IllegalArgumentException if the number of names is not the number of classes
     */
    public Map<String, ClassScores> classScores(List<String> classNames) {
        if (classNames.size() != classes()) {
            throw new IllegalArgumentException(
                    "got " + classNames.size() + " class names for " + classes() + " classes");
        }
        List<ClassScores> scores = classScores();
        Map<String, ClassScores> out = new LinkedHashMap<>();
        for (int c = 0; c < classes(); c++) {
            out.put(classNames.get(c), scores.get(c));
        }
        return out;
    }

    /** The number of classes. */
    public int classes() {
        return perClassAccuracy.length;
    }

    /** The accuracy of one class, NaN if it had no samples. */
    public double accuracyOf(int classIndex) {
        return perClassAccuracy[classIndex];
    }

    /**
     * Per-class accuracy keyed by class name, in class order; values are NaN for classes without samples.
     *
     * @throws IllegalArgumentException if the number of names is not the number of classes
     */
    public Map<String, Double> perClassAccuracy(List<String> classNames) {
        if (classNames.size() != classes()) {
            throw new IllegalArgumentException(
                    "got " + classNames.size() + " class names for " + classes() + " classes");
        }
        Map<String, Double> out = new LinkedHashMap<>();
        for (int c = 0; c < classes(); c++) {
            if (out.put(classNames.get(c), perClassAccuracy[c]) != null) {
                throw new IllegalArgumentException("class name '" + classNames.get(c) + "' appears twice");
            }
        }
        return out;
    }

    /** A fraction as a percentage with two decimals ({@code 87.50%}), or {@code n/a} for NaN. */
    public static String formatFraction(double fraction) {
        return Double.isNaN(fraction) ? "n/a" : String.format(Locale.ROOT, "%.2f%%", fraction * 100.0);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof EpochMetrics m
                && Double.compare(loss, m.loss) == 0
                && Double.compare(top1, m.top1) == 0
                && Double.compare(top5, m.top5) == 0
                && topK == m.topK
                && samples == m.samples
                && Arrays.equals(perClassAccuracy, m.perClassAccuracy)
                && Arrays.deepEquals(confusion, m.confusion);
    }

    @Override
    public int hashCode() {
        int h = Double.hashCode(loss);
        h = 31 * h + Double.hashCode(top1);
        h = 31 * h + Double.hashCode(top5);
        h = 31 * h + topK;
        h = 31 * h + Long.hashCode(samples);
        h = 31 * h + Arrays.hashCode(perClassAccuracy);
        return 31 * h + Arrays.deepHashCode(confusion);
    }

    @Override
    public String toString() {
        return String.format(Locale.ROOT, "EpochMetrics[samples=%d, loss=%.4f, top1=%s, top%d=%s, classes=%d]",
                samples, loss, formatFraction(top1), topK, formatFraction(top5), classes());
    }

    private static long[][] deepCopy(long[][] m) {
        long[][] out = new long[m.length][];
        for (int i = 0; i < m.length; i++) {
            out[i] = m[i].clone();
        }
        return out;
    }
}
