package dev.finetune.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.finetune.ConfigException;
import dev.finetune.checkpoint.Checkpoints;
import dev.finetune.engine.Engines;
import dev.finetune.optim.OptimizerSettings;
import dev.finetune.policy.FreezePolicy;
import dev.finetune.testing.TorchReference;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/**
 * Label smoothing, class weights and gradient clipping against PyTorch: three SGD steps of a ResNet-18 linear probe
 * with {@code CrossEntropyLoss(weight=w, label_smoothing=0.1)} and {@code clip_grad_norm_(max_norm=0.05)} give
 * PyTorch's losses, gradient norms and head (values from Debian's torch).
 */
class RecipeParityTest {

    @Test
    void smoothedWeightedClippedStepsMatchPyTorch() throws Exception {
        TorchReference ref = TorchReference.get();
        Path dir = TorchReference.cached("recipe-reference", "DONE", "recipe_reference.py",
                ref.checkpoint().toString());
        float[] w = TorchReference.readF32(dir.resolve("w.f32"));
        try (FineTuner ft = FineTuner.builder().checkpoint(Checkpoints.read(ref.checkpoint()))
                .policy(FreezePolicy.linearProbe()).optimizer(OptimizerSettings.sgd(0.01, 0.9))
                .loss(new CrossEntropy(0.1, w)).clipGradNorm(0.05).build()) {
            NDArray x = ft.manager().create(TorchReference.readF32(dir.resolve("x.f32")), new Shape(4, 3, 64, 64));
            NDArray y = ft.manager().create(TorchReference.readI64(dir.resolve("y.i64")));
            float[] losses = TorchReference.readF32(dir.resolve("losses.f32"));
            float[] norms = TorchReference.readF32(dir.resolve("norms.f32"));
            for (int i = 0; i < 3; i++) {
                float loss = ft.trainStep(x, y);
                System.out.printf("parity: recipe step %d loss %.6f (torch %.6f), grad norm %.6f (torch %.6f)%n", i,
                        loss, losses[i], ft.lastGradientNorm(), norms[i]);
                assertEquals(losses[i], loss, 1e-4 * Math.max(1, Math.abs(losses[i])), "loss " + i);
                assertEquals(norms[i], ft.lastGradientNorm(), 1e-4 * Math.max(1, norms[i]), "norm " + i);
            }
            assertTrue(norms[0] > 0.05, "the reference clips (norm " + norms[0] + " > 0.05)");
            var t = ft.model().namedTensors();
            double dw = TorchReference.maxAbsDiff(t.get("fc.weight").getArray().toFloatArray(),
                    TorchReference.readF32(dir.resolve("fc_weight.f32")));
            double db = TorchReference.maxAbsDiff(t.get("fc.bias").getArray().toFloatArray(),
                    TorchReference.readF32(dir.resolve("fc_bias.f32")));
            System.out.printf("parity: recipe fc.weight max |diff| %.3g, fc.bias %.3g%n", dw, db);
            assertTrue(dw < 1e-5 && db < 1e-5, "head after 3 steps differs: " + dw + ", " + db);
        }
    }

    @Test
    void plainLossEqualsDjlsAndSmoothingWithoutWeightsIsTheMixture() {
        Engines.pytorch();
        try (NDManager m = NDManager.newBaseManager()) {
            NDArray logits = m.create(new float[] {2, 0, -1, 0.5f, 0.5f, 3}, new Shape(2, 3));
            NDArray labels = m.create(new long[] {0, 2});
            double plain = CrossEntropy.plain().evaluate(labels, logits).getFloat();
            double[] logp0 = {2 - lse(2, 0, -1), 0 - lse(2, 0, -1), -1 - lse(2, 0, -1)};
            double[] logp1 = {0.5 - lse(0.5, 0.5, 3), 0.5 - lse(0.5, 0.5, 3), 3 - lse(0.5, 0.5, 3)};
            assertEquals(-(logp0[0] + logp1[2]) / 2, plain, 1e-6);
            double eps = 0.2;
            double smooth = new CrossEntropy(eps, null).evaluate(labels, logits).getFloat();
            double uniform = -(logp0[0] + logp0[1] + logp0[2] + logp1[0] + logp1[1] + logp1[2]) / 2 / 3;
            assertEquals((1 - eps) * plain + eps * uniform, smooth, 1e-6);
        }
        assertThrows(ConfigException.class, () -> new CrossEntropy(1.0, null));
        assertThrows(ConfigException.class, () -> new CrossEntropy(0, new float[] {1, -1}));
    }

    private static double lse(double... v) {
        double s = 0;
        for (double x : v) {
            s += Math.exp(x);
        }
        return Math.log(s);
    }


}
