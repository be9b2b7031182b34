package dev.finetune.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.Shape;
import dev.finetune.checkpoint.Checkpoints;
import dev.finetune.checkpoint.HostTensor;
import dev.finetune.optim.OptimizerSettings;
import dev.finetune.policy.FreezePolicy;
import dev.finetune.testing.TorchReference;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The weight EMA's TorchScript version (the default: update and swap in one call each) against the op-by-op NDArray
 * version with host copies, on the Fashion-MNIST ResNet-18's real weights in a full fine-tune (every weight and every
 * BatchNorm's running statistics averaged). ModelEmaV2's operations run in the same order in both, so the averages are
 * bit-equal; the swap must put the averages in the model exactly and the model's own weights back exactly, also when
 * the code run on the averages fails. {@code RecipeParityTest} checks the averages against PyTorch's.
 */
class WeightEmaTest {

    @Test
    void scriptedEmaEqualsTheOpByOpVersionAndSwapsExactly() {
        try (FineTuner ft = FineTuner.builder()
                .checkpoint(Checkpoints.read(TorchReference.repoRoot().resolve("models/resnet18-fmnist-a.safetensors")))
                .policy(FreezePolicy.trainAll()).optimizer(OptimizerSettings.sgd(0.05, 0.9)).build();
                WeightEma scripted = WeightEma.start(ft, 0.9, true);
                WeightEma ops = WeightEma.start(ft, 0.9, false)) {
            Random r = new Random(7);
            float[] pixels = new float[4 * 3 * 32 * 32];
            for (int i = 0; i < pixels.length; i++) {
                pixels[i] = (float) r.nextGaussian();
            }
            NDArray x = ft.manager().create(pixels, new Shape(4, 3, 32, 32));
            NDArray y = ft.manager().create(new long[] {0, 1, 2, 3});
            for (int step = 0; step < 4; step++) {
                ft.trainStep(x, y);
                scripted.update(ft);
                ops.update(ft);
            }
            Map<String, HostTensor> a = scripted.exportState();
            Map<String, HostTensor> b = ops.exportState();
            assertEquals(b.keySet(), a.keySet());
            assertTrue(a.containsKey("ema.layer1.0.conv1.weight") && a.containsKey("ema.layer1.0.bn1.running_var"),
                    "a full fine-tune averages weights and running statistics: " + a.keySet().size());
            Map<String, float[]> model = modelValues(ft);
            double moved = 0;
            for (Map.Entry<String, HostTensor> e : a.entrySet()) {
                String name = e.getKey();
                assertEquals(0, TorchReference.maxAbsDiff(e.getValue().data(), b.get(name).data()), name);
                moved = Math.max(moved, TorchReference.maxAbsDiff(e.getValue().data(),
                        model.get(name.substring(WeightEma.STATE_PREFIX.length()))));
            }
            assertTrue(moved > 1e-3, "the averages lag the weights (largest gap " + moved + ")");

            for (WeightEma ema : new WeightEma[] {scripted, ops}) {
                Map<String, float[]> inside = ema.withAveragedWeights(ft, () -> modelValues(ft));
                a.forEach((name, avg) -> assertEquals(0, TorchReference.maxAbsDiff(avg.data(),
                        inside.get(name.substring(WeightEma.STATE_PREFIX.length()))), "swapped in: " + name));
                assertSameValues(model, modelValues(ft), "restored");
                assertThrows(IllegalStateException.class, () -> ema.withAveragedWeights(ft, () -> {
                    throw new IllegalStateException("validation failed");
                }));
                assertSameValues(model, modelValues(ft), "restored after a failure");
            }
            assertThrows(IllegalStateException.class, () -> scripted.withAveragedWeights(ft, scripted::exportState),
                    "the state is not exported while the model holds the averages");
            assertSameValues(model, modelValues(ft), "restored after a refused export");
            // Still averaging the same after the swaps: one more step each.
            ft.trainStep(x, y);
            scripted.update(ft);
            ops.update(ft);
            Map<String, HostTensor> a2 = scripted.exportState();
            ops.exportState().forEach((name, t) -> assertEquals(0,
                    TorchReference.maxAbsDiff(t.data(), a2.get(name).data()), "after the swaps: " + name));
        }
    }

    private static Map<String, float[]> modelValues(FineTuner ft) {
        Map<String, float[]> out = new LinkedHashMap<>();
        ft.model().namedTensors().forEach((name, p) -> out.put(name, p.getArray().toFloatArray()));
        return out;
    }

    private static void assertSameValues(Map<String, float[]> expected, Map<String, float[]> actual, String what) {
        assertEquals(expected.keySet(), actual.keySet());
        expected.forEach((name, v) -> {
            if (TorchReference.maxAbsDiff(v, actual.get(name)) != 0) {
                throw new AssertionError(what + ": " + name + " differs");
            }
        });
    }
}
