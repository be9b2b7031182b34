package dev.finetune.metrics;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class ClassificationMetricsTest {

    @Test
    void tiesGoToTheLowestIndexLikeTorchArgmax() {
        ClassificationMetrics m = new ClassificationMetrics(3);
        m.add(new float[] {1f, 1f, 0f}, 1); // predicted 0: a miss for label 1
        m.add(new float[] {2f, 2f, 2f}, 0); // predicted 0: a hit
        m.add(new float[] {0f, 3f, 3f}, 2); // predicted 1: a miss
        EpochMetrics r = m.result();
        assertEquals(1.0 / 3, r.top1(), 1e-15);
        assertArrayEquals(new long[][] {{1, 0, 0}, {1, 0, 0}, {0, 1, 0}}, r.confusion());
    }

    @Test
    void nanLogitIsTheArgmaxLikeTorch() {
        ClassificationMetrics m = new ClassificationMetrics(3);
        m.add(new float[] {5f, Float.NaN, 9f}, 1);
        assertEquals(1.0, m.result().top1());
    }

    @Test
    void topFiveWithThreeClassesIsTopThreeAndAlwaysHits() {
        ClassificationMetrics m = new ClassificationMetrics(3);
        m.add(new float[] {3f, 2f, 1f}, 2);
        m.add(new float[] {3f, 2f, 1f}, 0);
        EpochMetrics r = m.result();
        assertEquals(3, r.topK());
        assertEquals(1.0, r.top5());
        assertEquals(0.5, r.top1());
    }

    @Test
    void topFiveCountsTiesAboveTheLabelByIndex() {
        ClassificationMetrics m = new ClassificationMetrics(7);
        float[] logits = {5f, 4f, 3f, 3f, 3f, 3f, 1f};
        m.add(logits, 5); // above: 5, 4 (larger) and indices 2, 3, 4 (equal, lower index) = 5 → outside the top 5
        m.add(logits, 4); // above: 5, 4, and indices 2, 3 = 4 → inside
        m.add(logits, 6); // last → outside
        m.add(logits, 0); // top-1 → inside
        EpochMetrics r = m.result();
        assertEquals(5, r.topK());
        assertEquals(0.5, r.top5());
        assertEquals(0.25, r.top1());
    }

    @Test
    void perClassAccuracyIsRecallAndNaNForAClassWithoutSamples() {
        ClassificationMetrics m = new ClassificationMetrics(3);
        // Batch of 4 in row-major N x C, from a larger reused buffer.
        float[] logits = {
            9, 0, 0, // label 0 → 0
            0, 9, 0, // label 0 → 1
            0, 9, 0, // label 1 → 1
            0, 0, 9, // label 0 → 2
            7, 7, 7 // not part of the batch
        };
        m.add(logits, new int[] {0, 0, 1, 0, 2}, 4, 3);
        EpochMetrics r = m.result();
        assertEquals(4, r.samples());
        assertArrayEquals(new long[][] {{1, 1, 1}, {0, 1, 0}, {0, 0, 0}}, r.confusion());
        double[] perClass = r.perClassAccuracy();
        assertEquals(1.0 / 3, perClass[0], 1e-15);
        assertEquals(1.0, perClass[1]);
        assertTrue(Double.isNaN(perClass[2]));
        assertEquals("n/a", EpochMetrics.formatFraction(perClass[2]));
        assertEquals("33.33%", EpochMetrics.formatFraction(perClass[0]));
        assertEquals(0.5, r.top1());
        assertTrue(Double.isNaN(r.perClassAccuracy(java.util.List.of("a", "b", "c")).get("c")));
    }

    @Test
    void lossIsTheSampleWeightedMean() {
        ClassificationMetrics m = new ClassificationMetrics(2);
        m.addLoss(3.0, 2); // batch mean 1.5 over 2
        m.addLoss(0.5, 1); // last, smaller batch
        assertEquals(3.5 / 3, m.result().loss(), 1e-15);
    }

    @Test
    void emptyAccumulatorGivesNaNNotZero() {
        EpochMetrics r = new ClassificationMetrics(4).result();
        assertEquals(0, r.samples());
        assertTrue(Double.isNaN(r.loss()));
        assertTrue(Double.isNaN(r.top1()));
        assertTrue(Double.isNaN(r.top5()));
        assertEquals(4, r.classes());
    }

    @Test
    void resetStartsAFreshEpoch() {
        ClassificationMetrics m = new ClassificationMetrics(2);
        m.add(new float[] {1f, 0f}, 0);
        m.addLoss(2, 1);
        m.reset();
        m.add(new float[] {1f, 0f}, 1);
        EpochMetrics r = m.result();
        assertEquals(1, r.samples());
        assertEquals(0.0, r.top1());
        assertTrue(Double.isNaN(r.loss()));
    }

    @Test
    void resultIsACopyThatLaterAddsDoNotChange() {
        ClassificationMetrics m = new ClassificationMetrics(2);
        m.add(new float[] {1f, 0f}, 0);
        EpochMetrics first = m.result();
        first.confusion()[0][0] = 99;
        m.add(new float[] {1f, 0f}, 1);
        assertEquals(1, first.confusion()[0][0]);
        assertEquals(1, first.samples());
        assertEquals(first, new EpochMetrics(first.loss(), first.top1(), first.top5(), first.topK(),
                first.perClassAccuracy(), first.confusion(), first.samples()));
    }

    @Test
    void rejectsMismatchedShapesAndBadLabels() {
        ClassificationMetrics m = new ClassificationMetrics(3);
        IllegalArgumentException e = assertThrows(
                IllegalArgumentException.class, () -> m.add(new float[6], new int[2], 2, 2));
        assertEquals("logits have 2 classes per row, this accumulator counts 3", e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> m.add(new float[5], new int[2], 2, 3));
        e = assertThrows(IllegalArgumentException.class, () -> m.add(new float[3], 3));
        assertEquals("label 3 is outside 0..2", e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> m.add(new float[3], -1));
        assertThrows(IllegalArgumentException.class, () -> m.add(new float[4], 0));
        assertThrows(IllegalArgumentException.class, () -> new ClassificationMetrics(0));
        assertEquals(0, m.samples());
    }
}
