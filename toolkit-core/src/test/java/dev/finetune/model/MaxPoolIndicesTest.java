package dev.finetune.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.pooling.Pool;
import ai.djl.training.GradientCollector;
import dev.finetune.engine.Engines;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The training max pool ({@link MaxPoolIndices}: the channels-last kernel's indices, values gathered from NCHW) against
 * libtorch's own pool: the same values and the same input gradient, bit for bit, on inputs full of ties (ReLU's
 * zeros, a few distinct values), with NaNs, at odd and even sizes and the windows the model zoo uses; the host check
 * that switches it off; and where it does not apply.
 */
class MaxPoolIndicesTest {
    @BeforeEach
    void fresh() {
        Engines.pytorch();
        MaxPoolIndices.reset();
    }

    @AfterEach
    void clear() {
        KernelFaults.setMaxPoolIndicesWrong(false);
        MaxPoolIndices.reset();
    }

    /** The pooled values and the gradient of {@code sum(pool(x) * upstream)} w.r.t. {@code x}. */
    private static NDArray[] forwardBackward(NDArray x0, NDArray upstream, boolean ours) {
        return forwardBackward(x0, upstream, ours, 3, 2, 1);
    }

    private static NDArray[] forwardBackward(NDArray x0, NDArray upstream, boolean ours, int k, int s, int p) {
        NDArray x = x0.duplicate();
        x.setRequiresGradient(true);
        try (GradientCollector gc = x.getManager().getEngine().newGradientCollector()) {
            NDArray y = ours ? MaxPoolIndices.maxPool2d(x, k, s, p)
                    : Pool.maxPool2d(x, new Shape(k, k), new Shape(s, s), new Shape(p, p), false);
            gc.backward(y.mul(upstream).sum());
            return new NDArray[] {y, x.getGradient().duplicate()};
        }
    }

    private static NDArray input(NDManager m, Shape s, int kind, long seed) {
        Random r = new Random(seed);
        float[] v = new float[(int) s.size()];
        for (int i = 0; i < v.length; i++) {
            float g = (float) r.nextGaussian();
            v[i] = switch (kind) {
                case 0 -> g; // a BatchNorm output
                case 1 -> Math.max(0f, g); // ReLU's: a window of zeros ties everywhere
                case 2 -> r.nextInt(3); // three values: ties among maxima
                default -> r.nextInt(50) == 0 ? Float.NaN : g; // NaNs: the pool selects the last one
            };
        }
        return m.create(v, s);
    }

    /** Equal element for element as bits (every NaN counts as equal to a NaN, which contentEquals does not). */
    private static boolean sameBits(NDArray a, NDArray b) {
        if (!a.getShape().equals(b.getShape())) {
            return false;
        }
        float[] x = a.toFloatArray();
        float[] y = b.toFloatArray();
        for (int i = 0; i < x.length; i++) {
            if (Float.floatToIntBits(x[i]) != Float.floatToIntBits(y[i])) {
                return false;
            }
        }
        return true;
    }

    /**
     * On a host whose channels-last pool is right: {@code checks} passed checks. On one where it is wrong (the values
     * and gradients asserted above are then the NCHW pool's, by the fallback): the path is off, with its reason —
     * printed, since that host is the finding.
     */
    private static void checkedOrOff(FastPathReport report, int checks, String what) {
        assertNotNull(report, "the path ran and checked this host");
        if (report.degraded()) {
            System.out.println("this host's channels-last max pool differs from NCHW: " + report.fallbacks());
            assertTrue(report.inUse().contains("NCHW"), report.inUse());
            assertFalse(report.checks().get(report.checks().size() - 1).passed(), report.checks().toString());
            return;
        }
        assertEquals(checks, report.checks().size(), what + ": " + report.checks());
        assertTrue(report.checks().stream().allMatch(FastPathReport.Check::passed), report.checks().toString());
    }

    @Test
    void valuesAndGradientsEqualLibtorchsPoolBitForBit() {
        try (NDManager m = NDManager.newBaseManager()) {
            Shape[] shapes = {new Shape(2, 64, 32, 32), new Shape(3, 8, 33, 31), new Shape(1, 16, 7, 7),
                    new Shape(2, 64, 112, 112), new Shape(4, 3, 2, 2)};
            for (Shape s : shapes) {
                for (int kind = 0; kind < 4; kind++) {
                    NDArray x = input(m, s, kind, 31L * kind + s.get(2));
                    Shape out = new Shape(s.get(0), s.get(1), (s.get(2) - 1) / 2 + 1, (s.get(3) - 1) / 2 + 1);
                    NDArray upstream = m.randomNormal(out);
                    NDArray[] lib = forwardBackward(x, upstream, false);
                    NDArray[] ours = forwardBackward(x, upstream, true);
                    assertEquals(out, ours[0].getShape(), s + " kind " + kind);
                    assertTrue(sameBits(lib[0], ours[0]), s + " kind " + kind + ": values");
                    assertTrue(sameBits(lib[1], ours[1]), s + " kind " + kind + ": input gradient");
                }
            }
            FastPathReport report = MaxPoolIndices.report();
            assertNotNull(report, "the path ran and checked this host");
            checkedOrOff(report, 5, "one check per input shape");
        }
    }

    @Test
    void theWindowsOfVggAndDenseNet() {
        try (NDManager m = NDManager.newBaseManager()) {
            NDArray x = input(m, new Shape(2, 4, 10, 10), 2, 7);
            for (int[] w : new int[][] {{2, 2, 0}, {3, 2, 1}, {3, 1, 1}, {2, 1, 0}}) {
                long side = (10 + 2L * w[2] - w[0]) / w[1] + 1;
                NDArray upstream = m.randomNormal(new Shape(2, 4, side, side));
                NDArray[] lib = forwardBackward(x, upstream, false, w[0], w[1], w[2]);
                NDArray[] ours = forwardBackward(x, upstream, true, w[0], w[1], w[2]);
                String window = w[0] + "/" + w[1] + "/" + w[2];
                assertTrue(lib[0].contentEquals(ours[0]), window + ": values");
                assertTrue(lib[1].contentEquals(ours[1]), window + ": input gradient");
            }
            checkedOrOff(MaxPoolIndices.report(), 4, "one check per window");
        }
    }

    /**
     * A host whose channels-last pool returned wrong indices (simulated): the first pool's check finds them, that pool
     * and every later one run libtorch's NCHW pool, with the right values and gradients, and the report says why.
     */
    @Test
    void wrongIndicesAreFoundAndThePathSwitchesOff() {
        KernelFaults.setMaxPoolIndicesWrong(true);
        try (NDManager m = NDManager.newBaseManager()) {
            for (long side : new long[] {32, 16}) {
                NDArray x = input(m, new Shape(2, 8, side, side), 0, side);
                NDArray upstream = m.randomNormal(new Shape(2, 8, side / 2, side / 2));
                NDArray[] lib = forwardBackward(x, upstream, false);
                NDArray[] ours = forwardBackward(x, upstream, true);
                assertTrue(lib[0].contentEquals(ours[0]), side + ": values after the fallback");
                assertTrue(lib[1].contentEquals(ours[1]), side + ": gradient after the fallback");
            }
            FastPathReport report = MaxPoolIndices.report();
            assertTrue(report.degraded(), report.toMap().toString());
            assertEquals(1, report.checks().size(), "checked once, then off: " + report.checks());
            assertFalse(report.checks().get(0).passed());
            assertTrue(report.fallbacks().get(0).contains("differ from the NCHW pool's"), report.fallbacks().get(0));
            assertTrue(report.inUse().contains("NCHW"), report.inUse());
        }
    }

    /** Every {@value MaxPoolIndices#CHECK_EVERY}th pool is checked again; a long run keeps one such entry, the latest. */
    @Test
    void aLongRunIsRecheckedWithoutPilingUpChecks() {
        try (NDManager m = NDManager.newBaseManager()) {
            NDArray x = input(m, new Shape(1, 2, 6, 6), 2, 5);
            x.setRequiresGradient(true);
            try (GradientCollector gc = m.getEngine().newGradientCollector()) {
                for (int i = 0; i < 2 * MaxPoolIndices.CHECK_EVERY + 1; i++) {
                    try (NDManager step = m.newSubManager()) {
                        NDArray y = MaxPoolIndices.maxPool2d(x, 3, 2, 1);
                        y.attach(step);
                    }
                }
                gc.getClass();
            }
            FastPathReport report = MaxPoolIndices.report();
            checkedOrOff(report, 2, "the first check and the latest re-check");
        }
    }

    /** Without autograd (inference, a frozen prefix) and on a channels-last input, libtorch's own pool runs. */
    @Test
    void notUsedWithoutGradientsNorOnChannelsLastInput() {
        try (NDManager m = NDManager.newBaseManager()) {
            NDArray x = input(m, new Shape(2, 8, 16, 16), 0, 3);
            try (Engines.NoGrad g = Engines.noGrad()) {
                g.getClass();
                NDArray y = MaxPoolIndices.maxPool2d(x, 3, 2, 1);
                assertTrue(y.contentEquals(Pool.maxPool2d(x, new Shape(3, 3), new Shape(2, 2), new Shape(1, 1),
                        false)));
            }
            NDArray cl = FoldedPrefix.toChannelsLast(x);
            cl.setRequiresGradient(true);
            try (GradientCollector gc = m.getEngine().newGradientCollector()) {
                NDArray y = MaxPoolIndices.maxPool2d(cl, 3, 2, 1);
                gc.backward(y.sum());
            }
            assertNull(MaxPoolIndices.report(), "no check: the path was not taken");
        }
    }
}
