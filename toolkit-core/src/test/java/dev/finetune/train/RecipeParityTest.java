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

    /**
     * Five SGD steps of a last-stage fine-tune (layer4's BatchNorms updating their statistics) with a weight EMA of
     * decay 0.9: the averages of trained weights, of moving running statistics and of a frozen tensor equal the ones
     * timm's ModelEmaV2 rule gives in PyTorch.
     */
    @Test
    void weightEmaMatchesModelEmaV2() throws Exception {
        TorchReference ref = TorchReference.get();
        Path dir = TorchReference.cached("ema-reference", "DONE", "ema_reference.py", ref.checkpoint().toString());
        FreezePolicy lastStage = new FreezePolicy(false, -1, java.util.List.of(FreezePolicy.Rule.train(
                "freeze.rules[0]", "layer4.*", "fc.*")), dev.finetune.policy.BnPolicy.AUTO);
        try (FineTuner ft = FineTuner.builder().checkpoint(Checkpoints.read(ref.checkpoint())).policy(lastStage)
                .optimizer(OptimizerSettings.sgd(0.01, 0.9)).foldFrozenPrefix(false).build();
                WeightEma ema = WeightEma.start(ft, 0.9)) {
            NDArray x = ft.manager().create(TorchReference.readF32(dir.resolve("x.f32")), new Shape(4, 3, 64, 64));
            NDArray y = ft.manager().create(TorchReference.readI64(dir.resolve("y.i64")));
            float[] losses = TorchReference.readF32(dir.resolve("losses.f32"));
            for (int i = 0; i < 5; i++) {
                float loss = ft.trainStep(x, y);
                ema.update(ft);
                assertEquals(losses[i], loss, 1e-4 * Math.max(1, Math.abs(losses[i])), "loss " + i);
            }
            var state = ema.exportState();
            var live = ft.model().namedTensors();
            for (String name : java.util.List.of("fc.weight", "fc.bias", "layer4.1.conv2.weight",
                    "layer4.0.bn1.weight", "layer4.1.bn2.running_mean", "layer4.1.bn2.running_var",
                    "layer3.1.conv2.weight")) {
                float[] torch = TorchReference.readF32(dir.resolve(name + ".f32"));
                var averaged = state.get(WeightEma.STATE_PREFIX + name);
                float[] ours = averaged != null ? averaged.data() : live.get(name).getArray().toFloatArray();
                double scale = 1;
                for (float v : torch) {
                    scale = Math.max(scale, Math.abs(v));
                }
                double d = TorchReference.maxAbsDiff(ours, torch);
                System.out.printf("parity: ema %s max |diff| %.3g (scale %.3g)%n", name, d, scale);
                assertTrue(d <= 1e-4 * scale, name + ": EMA differs from PyTorch's by " + d);
            }
            assertTrue(!state.containsKey(WeightEma.STATE_PREFIX + "layer3.1.conv2.weight"),
                    "a frozen tensor is not averaged: it stays the model's own");
            float[] before = live.get("fc.weight").getArray().toFloatArray();
            float[] inside = ema.withAveragedWeights(ft, () -> live.get("fc.weight").getArray().toFloatArray());
            assertTrue(TorchReference.maxAbsDiff(inside, state.get("ema.fc.weight").data()) == 0, "swapped in");
            assertTrue(TorchReference.maxAbsDiff(before, live.get("fc.weight").getArray().toFloatArray()) == 0,
                    "and the model's own weights back, bit for bit");
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
