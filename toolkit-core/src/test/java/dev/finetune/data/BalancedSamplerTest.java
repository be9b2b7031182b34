package dev.finetune.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import org.junit.jupiter.api.Test;

/**
 * Weighted sampling with replacement ({@code data.sampler: balanced}): each epoch draws as many indices as samples,
 * by weight, from a (seed, epoch) generator — the same draws on a rerun or a resume, new ones each epoch.
 */
class BalancedSamplerTest {

    @Test
    void classBalancedDrawsFromAnImbalancedSet() {
        int n = 1000;
        double[] weights = new double[n];
        int[] label = new int[n];
        for (int i = 0; i < n; i++) {
            label[i] = i < 900 ? 0 : 1; // 900 of class 0, 100 of class 1
            weights[i] = 1.0 / (label[i] == 0 ? 900 : 100);
        }
        BatchLoader.Options o = BatchLoader.Options.builder().batchSize(50).shuffle(true).seed(7)
                .sampleWeights(weights).build();
        int[][] epoch0 = BatchLoader.plan(n, o, 0);
        assertEquals(20, epoch0.length);
        int[] drawn = Arrays.stream(epoch0).flatMapToInt(Arrays::stream).toArray();
        assertEquals(n, drawn.length, "as many draws as samples");
        long ones = Arrays.stream(drawn).filter(i -> label[i] == 1).count();
        assertTrue(ones > 430 && ones < 570, "about half the draws from the rare class: " + ones);
        assertTrue(Arrays.stream(drawn).distinct().count() < n, "with replacement");
        assertArrayEquals(drawn, Arrays.stream(BatchLoader.plan(n, o, 0)).flatMapToInt(Arrays::stream).toArray(),
                "the same (seed, epoch), the same draws");
        assertFalse(Arrays.equals(drawn,
                Arrays.stream(BatchLoader.plan(n, o, 1)).flatMapToInt(Arrays::stream).toArray()), "new draws each epoch");
    }

    @Test
    void zeroWeightsAreNeverDrawn() {
        double[] w = {0, 1, 0, 0, 2, 0};
        int[] draws = BatchLoader.weightedDraw(w, 3000, new java.util.SplittableRandom(1));
        assertTrue(Arrays.stream(draws).allMatch(i -> i == 1 || i == 4), Arrays.toString(Arrays.copyOf(draws, 20)));
        long fours = Arrays.stream(draws).filter(i -> i == 4).count();
        assertTrue(fours > 1850 && fours < 2150, "index 4 twice as likely as index 1: " + fours);
    }
}
