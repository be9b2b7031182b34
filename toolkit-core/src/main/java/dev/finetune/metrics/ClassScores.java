package dev.finetune.metrics;

import java.util.ArrayList;
import java.util.List;

/**
 * Precision, recall, F1 and support of one class, from a confusion matrix, as scikit-learn's
 * {@code precision_recall_fscore_support} computes them with {@code zero_division=0}: a class never predicted has
 * precision 0, a class without samples has recall 0, and F1 is 0 where precision + recall is 0.
 *
 * @param precision true positives / predicted as this class
 * @param recall true positives / samples of this class
 * @param f1 harmonic mean of precision and recall
 * @param support samples of this class
 */
public record ClassScores(double precision, double recall, double f1, long support) {

    /** One entry per class, in class order; rows of {@code confusion} are true classes, columns predicted. */
    public static List<ClassScores> of(long[][] confusion) {
        int n = confusion.length;
        List<ClassScores> out = new ArrayList<>(n);
        for (int c = 0; c < n; c++) {
            long tp = confusion[c][c];
            long support = 0;
            long predicted = 0;
            for (int j = 0; j < n; j++) {
                support += confusion[c][j];
                predicted += confusion[j][c];
            }
            double p = predicted == 0 ? 0 : (double) tp / predicted;
            double r = support == 0 ? 0 : (double) tp / support;
            double f = p + r == 0 ? 0 : 2 * p * r / (p + r);
            out.add(new ClassScores(p, r, f, support));
        }
        return out;
    }

    /**
     * The unweighted mean over classes ({@code average="macro"}) and the support-weighted mean
     * ({@code average="weighted"}) of each score.
     *
     * @param macroPrecision mean precision over classes
     * @param macroRecall mean recall over classes
     * @param macroF1 mean F1 over classes
     * @param weightedPrecision support-weighted precision
     * @param weightedRecall support-weighted recall
     * @param weightedF1 support-weighted F1
     */
    public record Averages(double macroPrecision, double macroRecall, double macroF1, double weightedPrecision,
            double weightedRecall, double weightedF1) {

        /** The averages of {@code scores}; NaN when there are no classes (or, for weighted, no samples). */
        public static Averages of(List<ClassScores> scores) {
            double mp = 0;
            double mr = 0;
            double mf = 0;
            double wp = 0;
            double wr = 0;
            double wf = 0;
            long total = 0;
            for (ClassScores s : scores) {
                mp += s.precision;
                mr += s.recall;
                mf += s.f1;
                wp += s.precision * s.support;
                wr += s.recall * s.support;
                wf += s.f1 * s.support;
                total += s.support;
            }
            int n = scores.size();
            return new Averages(n == 0 ? Double.NaN : mp / n, n == 0 ? Double.NaN : mr / n,
                    n == 0 ? Double.NaN : mf / n, total == 0 ? Double.NaN : wp / total,
                    total == 0 ? Double.NaN : wr / total, total == 0 ? Double.NaN : wf / total);
        }
    }
}
