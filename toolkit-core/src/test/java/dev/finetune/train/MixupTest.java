package dev.finetune.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.finetune.engine.Engines;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Mixup/CutMix against timm's definitions, computed here element by element from the draw: Mixup blends each image with
 * its partner in the reversed batch, CutMix pastes the partner's box and corrects λ to the pasted area, targets mix
 * label-smoothed one-hot vectors with the same λ; the same (seed, epoch, batch) gives the same tensors.
 */
class MixupTest {
    private static final int N = 4;
    private static final int C = 5;
    private static final int H = 8;
    private static final int W = 6;

    @Test
    void mixupAndCutMixFollowTimmAndRepeatForTheSameSeed() {
        Engines.pytorch();
        Mixup mixup = new Mixup(0.8, 1.0, 1.0, 0.5);
        float[] x = new float[N * 3 * H * W];
        Random r = new Random(1);
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) r.nextGaussian();
        }
        long[] labels = {0, 3, 1, 4};
        double smoothing = 0.1;
        boolean sawMixup = false;
        boolean sawCutmix = false;
        try (NDManager m = NDManager.newBaseManager()) {
            NDArray images = m.create(x, new Shape(N, 3, H, W));
            NDArray y = m.create(labels);
            for (int batch = 0; batch < 12; batch++) {
                Mixup.Mixed a = mixup.apply(images, y, C, smoothing, 7, 2, batch, m);
                Mixup.Mixed b = mixup.apply(images, y, C, smoothing, 7, 2, batch, m);
                assertArrayEquals(a.images().toFloatArray(), b.images().toFloatArray(), "same seed, same images");
                assertArrayEquals(a.targets().toFloatArray(), b.targets().toFloatArray(), "same seed, same targets");
                double lam = a.lambda();
                assertTrue(lam >= 0 && lam <= 1, "lambda " + lam);
                float[] got = a.images().toFloatArray();
                for (int n = 0; n < N; n++) {
                    int partner = N - 1 - n;
                    for (int c = 0; c < 3; c++) {
                        for (int h = 0; h < H; h++) {
                            for (int w = 0; w < W; w++) {
                                int i = ((n * 3 + c) * H + h) * W + w;
                                int j = ((partner * 3 + c) * H + h) * W + w;
                                float want;
                                if (a.cutmix()) {
                                    int[] box = a.box();
                                    boolean inside = h >= box[0] && h < box[1] && w >= box[2] && w < box[3];
                                    want = inside ? x[j] : x[i];
                                } else {
                                    want = (float) lam * x[i] + (float) (1 - lam) * x[j];
                                }
                                assertEquals(want, got[i], 1e-6, "pixel " + i + " of batch " + batch);
                            }
                        }
                    }
                }
                if (a.cutmix()) {
                    sawCutmix = true;
                    int[] box = a.box();
                    assertEquals(1.0 - (double) (box[1] - box[0]) * (box[3] - box[2]) / (H * W), lam, 1e-12,
                            "CutMix's lambda is corrected to the pasted area");
                } else {
                    sawMixup |= lam < 1;
                }
                float[] t = a.targets().toFloatArray();
                double off = smoothing / C;
                double on = 1 - smoothing + off;
                for (int n = 0; n < N; n++) {
                    double sum = 0;
                    for (int k = 0; k < C; k++) {
                        double own = labels[n] == k ? on : off;
                        double other = labels[N - 1 - n] == k ? on : off;
                        assertEquals(lam * own + (1 - lam) * other, t[n * C + k], 1e-6, "target " + n + "," + k);
                        sum += t[n * C + k];
                    }
                    assertEquals(1.0, sum, 1e-5);
                }
            }
            assertTrue(sawMixup && sawCutmix, "12 batches with switch_prob 0.5 draw both kinds");
            double l0 = mixup.apply(images, y, C, smoothing, 7, 2, 0, m).lambda();
            assertNotEquals(l0, mixup.apply(images, y, C, smoothing, 8, 2, 0, m).lambda(), "another seed draws anew");
            Mixup never = new Mixup(0.8, 0, 0.0, 0.5);
            Mixup.Mixed none = never.apply(images, y, C, 0, 7, 2, 0, m);
            assertEquals(1.0, none.lambda());
            assertArrayEquals(x, none.images().toFloatArray(), "prob 0 leaves the batch alone");
        }
    }

    /** The soft-target loss is cross-entropy: on one-hot targets it is the plain loss, on smoothed ones the smoothed. */
    @Test
    void softTargetsGiveTheSameLossAsLabels() {
        Engines.pytorch();
        try (NDManager m = NDManager.newBaseManager()) {
            NDArray logits = m.create(new float[] {2, 0, -1, 0.5f, 0.5f, 3}, new Shape(2, 3));
            NDArray labels = m.create(new long[] {0, 2});
            NDArray oneHot = labels.oneHot(3).toType(ai.djl.ndarray.types.DataType.FLOAT32, false);
            assertEquals(CrossEntropy.plain().evaluate(labels, logits).getFloat(),
                    CrossEntropy.plain().evaluate(oneHot, logits).getFloat(), 1e-6);
            NDArray smoothed = oneHot.mul(1 - 0.2f).add(0.2f / 3);
            assertEquals(new CrossEntropy(0.2, null).evaluate(labels, logits).getFloat(),
                    CrossEntropy.plain().evaluate(smoothed, logits).getFloat(), 1e-6);
        }
    }
}
