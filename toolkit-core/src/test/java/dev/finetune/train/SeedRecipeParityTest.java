package dev.finetune.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Parameter;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.jni.JniUtils;
import dev.finetune.checkpoint.Checkpoint;
import dev.finetune.checkpoint.Checkpoints;
import dev.finetune.optim.OptimizerSettings;
import dev.finetune.policy.FreezePolicy;
import dev.finetune.testing.TorchReference;
import java.nio.FloatBuffer;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The seed's recipe — freeze all, {@code fc = Linear(512, 100)}, SGD(lr 0.01, momentum 0.9) over fc — gives PyTorch's
 * fc after 3 steps, and every frozen tensor (BN running statistics included) stays bit-identical.
 */
class SeedRecipeParityTest {

    @Test
    void threeSgdStepsMatchPyTorchAndFrozenStaysFrozen() throws Exception {
        TorchReference ref = TorchReference.get();
        Checkpoint ckpt = Checkpoints.read(ref.checkpoint());
        try (FineTuner ft = FineTuner.builder()
                .checkpoint(ckpt)
                .headClasses(100)
                .policy(FreezePolicy.linearProbe())
                .optimizer(OptimizerSettings.sgd(0.01, 0.9))
                .build()) {
            assertEquals(51_300, ft.plan().trainableParameterCount());
            assertEquals(11_176_512, ft.plan().frozenParameterCount());
            Map<String, Parameter> t = ft.model().namedTensors();
            // Same starting head as PyTorch's (its initial values come from the reference).
            t.get("fc.weight").getArray().set(FloatBuffer.wrap(ref.array("seed_fc0_weight")));
            t.get("fc.bias").getArray().set(FloatBuffer.wrap(ref.array("seed_fc0_bias")));
            Map<String, float[]> before = snapshot(t);

            NDArray x = ft.manager().create(ref.array("seed_x"), new Shape(ref.shape("seed_x")));
            NDArray y = ft.manager().create(ref.array("seed_y"), new Shape(4)).toType(DataType.INT64, false);
            float[] losses = new float[3];
            for (int i = 0; i < 3; i++) {
                losses[i] = ft.trainStep(x, y);
            }
            assertArrayEquals(ref.array("seed_losses"), losses, 1e-4f);
            double w = TorchReference.maxAbsDiff(t.get("fc.weight").getArray().toFloatArray(),
                    ref.array("seed_fc3_weight"));
            double b = TorchReference.maxAbsDiff(t.get("fc.bias").getArray().toFloatArray(),
                    ref.array("seed_fc3_bias"));
            System.out.printf("parity: seed recipe fc.weight after 3 steps max |diff| %.3g, fc.bias %.3g%n", w, b);
            assertTrue(w < 1e-4, "fc.weight after 3 steps differs from PyTorch by " + w);
            assertTrue(b < 1e-4, "fc.bias after 3 steps differs from PyTorch by " + b);

            for (var e : t.entrySet()) {
                String name = e.getKey();
                if (name.startsWith("fc.")) {
                    continue;
                }
                assertArrayEquals(before.get(name), e.getValue().getArray().toFloatArray(),
                        name + " changed although frozen");
                assertFalse(e.getValue().requiresGradient(), name + " requires grad");
                assertTrue(JniUtils.getGradient((PtNDArray) e.getValue().getArray()) == null,
                        name + " has a gradient");
            }
            assertEquals(List.of("fc.weight", "fc.bias"), ft.optimizer().parameterNames());
            assertEquals(List.of("fc.weight", "fc.bias"), ft.optimizer().namesWithState());
        }
    }

    @Test
    void layer4PolicyMovesOnlyLayer4AndHead() throws Exception {
        TorchReference ref = TorchReference.get();
        Checkpoint ckpt = Checkpoints.read(ref.checkpoint());
        FreezePolicy lastStage = new FreezePolicy(false, -1,
                List.of(FreezePolicy.Rule.train("freeze.rules[0]", "layer4", "fc")),
                dev.finetune.policy.BnPolicy.AUTO);
        try (FineTuner ft = FineTuner.builder()
                .checkpoint(ckpt)
                .headClasses(10)
                .seed(3)
                .policy(lastStage)
                .optimizer(OptimizerSettings.sgd(0.05, 0.9))
                .build()) {
            Map<String, Parameter> t = ft.model().namedTensors();
            Map<String, float[]> before = snapshot(t);
            NDArray x = ft.manager().randomNormal(new Shape(4, 3, 64, 64));
            NDArray y = ft.manager().create(new long[] {1, 2, 3, 4});
            for (int i = 0; i < 3; i++) {
                ft.trainStep(x, y);
            }
            for (var e : t.entrySet()) {
                String name = e.getKey();
                float[] now = e.getValue().getArray().toFloatArray();
                boolean trains = name.startsWith("layer4.") || name.startsWith("fc.");
                if (trains) {
                    assertFalse(java.util.Arrays.equals(before.get(name), now), name + " did not change");
                } else {
                    assertArrayEquals(before.get(name), now, name + " changed although frozen");
                }
            }
            assertTrue(ft.optimizer().namesWithState().stream()
                    .allMatch(n -> n.startsWith("layer4.") || n.startsWith("fc.")));
            assertNotEquals(0, ft.optimizer().namesWithState().size());
        }
    }

    private static Map<String, float[]> snapshot(Map<String, Parameter> t) {
        Map<String, float[]> out = new LinkedHashMap<>();
        t.forEach((k, v) -> out.put(k, v.getArray().toFloatArray()));
        return out;
    }
}
