package dev.finetune.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.finetune.model.Architectures;
import dev.finetune.optim.OptimizerSettings;
import dev.finetune.policy.BnPolicy;
import dev.finetune.policy.FreezePolicy;
import dev.finetune.testing.NativeNoise;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Training steps give the same losses, bit for bit, whether or not another thread allocates and fills native memory
 * meanwhile (as the data loader's workers do): no step may read memory it does not own. Freeing a training forward's
 * intermediates stage by stage broke this for MobileNetV3 (DJL's scalar operands, saved by autograd, are tensors over
 * Java buffers): its loss went NaN under a concurrent allocator, and CLI runs stopped being reproducible.
 */
class AllocationNoiseTest {
    @Test
    void mobileNetV3StepsAreUnchangedByAConcurrentAllocator() throws Exception {
        float[] quiet = losses(false);
        float[] noisy = losses(true);
        System.out.printf("allocation noise: mobilenet_v3_small losses %s%n", java.util.Arrays.toString(noisy));
        assertArrayEquals(quiet, noisy, 0f, "losses with another thread allocating");
    }

    private static float[] losses(boolean noise) throws Exception {
        try (FineTuner ft = FineTuner.builder().arch(Architectures.parse("mobilenet_v3_small")).headClasses(5).seed(0)
                .policy(new FreezePolicy(true, -1, List.of(), BnPolicy.AUTO)).optimizer(OptimizerSettings.sgd(0.01, 0.9))
                .build()) {
            Random r = new Random(0);
            float[] xs = new float[16 * 3 * 32 * 32];
            for (int i = 0; i < xs.length; i++) {
                xs[i] = (float) r.nextGaussian();
            }
            long[] ys = new long[16];
            for (int i = 0; i < ys.length; i++) {
                ys[i] = r.nextInt(5);
            }
            float[] out = new float[6];
            try (NativeNoise n = NativeNoise.start(noise)) {
                for (int s = 0; s < out.length; s++) {
                    ft.manager().getEngine().setRandomSeed(s);
                    try (NDManager m = ft.manager().newSubManager()) {
                        NDArray x = m.create(xs, new Shape(16, 3, 32, 32));
                        out[s] = ft.trainStep(x, m.create(ys), 0.01);
                    }
                }
            } catch (dev.finetune.FinetuneException e) {
                out[out.length - 1] = Float.NaN; // diverged: cannot equal the quiet run's finite losses
            }
            return out;
        }
    }
}
