package dev.finetune.advise;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.finetune.engine.Engines;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The linear probe fits what a linear classifier can fit, and scores held-out data honestly. */
class LinearProbeTest {
    @Test
    void separatesLinearlySeparableClassesAndIsDeterministic() {
        Engines.pytorch();
        try (NDManager m = NDManager.newBaseManager()) {
            // Three Gaussian blobs in 8 dimensions, centres 6 standard deviations apart, on an offset and scale a
            // probe must standardize away.
            NDArray[] train = blobs(m, 600, 1);
            NDArray[] val = blobs(m, 300, 2);
            LinearProbe.Fit a = LinearProbe.defaults().fit(train[0], train[1], val[0], val[1], 3);
            LinearProbe.Fit b = LinearProbe.defaults().fit(train[0], train[1], val[0], val[1], 3);
            assertEquals(1.0, a.trainAccuracy(), 1e-9, a.toString());
            assertTrue(a.valAccuracy() > 0.99, a.toString());
            assertTrue(a.trainLoss() < 0.05, a.toString());
            assertEquals(a, b, "the same features give the same probe");
        }
    }

    @Test
    void noSignalScoresAtChance() {
        Engines.pytorch();
        try (NDManager m = NDManager.newBaseManager()) {
            Random r = new Random(3);
            float[] x = new float[2000 * 16];
            long[] y = new long[2000];
            for (int i = 0; i < x.length; i++) {
                x[i] = (float) r.nextGaussian();
            }
            for (int i = 0; i < y.length; i++) {
                y[i] = r.nextInt(4);
            }
            NDArray xs = m.create(x, new Shape(2000, 16));
            NDArray ys = m.create(y);
            LinearProbe.Fit f = LinearProbe.defaults().fit(xs.get("0:1000"), ys.get("0:1000"), xs.get("1000:"),
                    ys.get("1000:"), 4);
            // Labels independent of the features: held-out accuracy is chance (0.25) within sampling noise.
            assertTrue(Math.abs(f.valAccuracy() - 0.25) < 0.05, f.toString());
        }
    }

    private static NDArray[] blobs(NDManager m, int n, long seed) {
        Random r = new Random(seed);
        float[] x = new float[n * 8];
        long[] y = new long[n];
        for (int i = 0; i < n; i++) {
            int c = i % 3;
            y[i] = c;
            for (int d = 0; d < 8; d++) {
                double centre = d == c ? 6 : 0;
                x[i * 8 + d] = (float) (100 + 10 * (centre + r.nextGaussian()));
            }
        }
        return new NDArray[] {m.create(x, new Shape(n, 8)), m.create(y)};
    }
}
