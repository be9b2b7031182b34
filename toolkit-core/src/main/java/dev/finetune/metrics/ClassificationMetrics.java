package dev.finetune.metrics;

/**
 * Accumulates classification results over the batches of one pass and produces an {@link EpochMetrics}.
 *
 * <p>Predictions follow {@code torch.argmax}: among equal logits the lowest class index wins, and NaN counts as larger
 * than any number. Top-k uses the same order, so a sample counts when fewer than k logits rank above its label's
 * logit, where "above" means larger, or equal at a lower index. That makes top-1 exactly argmax accuracy and keeps
 * both independent of sort stability.
 *
 * <p>Not thread-safe: one accumulator per loop, fed from the thread that copies the logits to the host.
 */
public final class ClassificationMetrics {
    /** The K of the top-K accuracy, reduced to the number of classes when there are fewer. */
    public static final int TOP_K = 5;

    private final int classes;
    private final int k;
    private final long[][] confusion;
    private long samples;
    private long topKHits;
    private double lossSum;
    private long lossCount;

    /**
     * An empty accumulator.
     *
     * @param classes the number of classes, at least 1
     */
    public ClassificationMetrics(int classes) {
        if (classes < 1) {
            throw new IllegalArgumentException("classes must be at least 1, found " + classes);
        }
        this.classes = classes;
        this.k = Math.min(TOP_K, classes);
        this.confusion = new long[classes][classes];
    }

    /** The number of classes this accumulator was built for. */
    public int classes() {
        return classes;
    }

    /** How many samples have been added since construction or the last {@link #reset()}. */
    public long samples() {
        return samples;
    }

    /**
     * Adds a batch.
     *
     * @param logits row-major {@code n x classes} scores (a larger score is a more likely class); only the first
     *     {@code n * classes} entries are read, so a reused, larger buffer is fine
     * @param labels the true class of each sample; only the first {@code n} are read
     * @param n the number of samples in the batch
     * @param classes the row width of {@code logits}; must equal this accumulator's class count
     * @throws IllegalArgumentException if the sizes disagree or a label is out of range
     */
    public void add(float[] logits, int[] labels, int n, int classes) {
        if (classes != this.classes) {
            throw new IllegalArgumentException(
                    "logits have " + classes + " classes per row, this accumulator counts " + this.classes);
        }
        if (n < 0 || (long) n * classes > logits.length || n > labels.length) {
            throw new IllegalArgumentException("batch of " + n + " samples x " + classes + " classes does not fit "
                    + logits.length + " logits and " + labels.length + " labels");
        }
        for (int i = 0; i < n; i++) {
            add(logits, i * classes, labels[i]);
        }
    }

    /**
     * Adds one sample whose logits are the whole array.
     *
     * @throws IllegalArgumentException if the array length is not the class count or the label is out of range
     */
    public void add(float[] sampleLogits, int label) {
        if (sampleLogits.length != classes) {
            throw new IllegalArgumentException(
                    "got " + sampleLogits.length + " logits for one sample, expected " + classes);
        }
        add(sampleLogits, 0, label);
    }

    /**
     * Adds one sample whose logits are {@code logits[offset .. offset + classes)}.
     *
     * @throws IllegalArgumentException if the label is out of range
     */
    public void add(float[] logits, int offset, int label) {
        if (label < 0 || label >= classes) {
            throw new IllegalArgumentException("label " + label + " is outside 0.." + (classes - 1));
        }
        float target = logits[offset + label];
        int predicted = 0;
        int ranksAbove = 0;
        for (int c = 0; c < classes; c++) {
            float v = logits[offset + c];
            if (c > 0 && ranksAbove(v, logits[offset + predicted])) {
                predicted = c;
            }
            if (ranksAbove(v, target) || (c < label && sameRank(v, target))) {
                ranksAbove++;
            }
        }
        confusion[label][predicted]++;
        if (ranksAbove < k) {
            topKHits++;
        }
        samples++;
    }

    /**
     * Adds to the loss total.
     *
     * @param sumLoss the loss summed (not averaged) over {@code count} samples; a batch-mean loss must be multiplied
     *     by the batch size first, or the last, smaller batch would be over-weighted
     * @param count the number of samples the sum covers
     */
    public void addLoss(double sumLoss, int count) {
        if (count < 0) {
            throw new IllegalArgumentException("loss sample count must be >= 0, found " + count);
        }
        lossSum += sumLoss;
        lossCount += count;
    }

    /** The metrics of everything added so far; the accumulator keeps counting afterwards. */
    public EpochMetrics result() {
        double[] perClass = new double[classes];
        long correct = 0;
        for (int t = 0; t < classes; t++) {
            long rowTotal = 0;
            for (long count : confusion[t]) {
                rowTotal += count;
            }
            correct += confusion[t][t];
            perClass[t] = rowTotal == 0 ? Double.NaN : (double) confusion[t][t] / rowTotal;
        }
        double top1 = samples == 0 ? Double.NaN : (double) correct / samples;
        double topKAccuracy = samples == 0 ? Double.NaN : (double) topKHits / samples;
        double loss = lossCount == 0 ? Double.NaN : lossSum / lossCount;
        return new EpochMetrics(loss, top1, topKAccuracy, k, perClass, confusion, samples);
    }

    /** Forgets everything, for the next epoch. */
    public void reset() {
        for (long[] row : confusion) {
            java.util.Arrays.fill(row, 0L);
        }
        samples = 0;
        topKHits = 0;
        lossSum = 0;
        lossCount = 0;
    }

    /** Larger, with NaN above every number (as torch.argmax and torch.topk treat it). */
    private static boolean ranksAbove(float a, float b) {
        return Float.isNaN(a) ? !Float.isNaN(b) : a > b;
    }

    /** Equal as numbers (so -0.0 equals 0.0), or both NaN. */
    private static boolean sameRank(float a, float b) {
        return a == b || (Float.isNaN(a) && Float.isNaN(b));
    }
}
