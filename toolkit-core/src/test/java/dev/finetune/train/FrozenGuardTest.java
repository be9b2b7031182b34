package dev.finetune.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.Shape;
import dev.finetune.ErrorKind;
import dev.finetune.FinetuneException;
import dev.finetune.engine.Engines;
import dev.finetune.optim.OptimizerSettings;
import dev.finetune.policy.BnPolicy;
import dev.finetune.policy.FreezePolicy;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The bit-identical check catches a frozen tensor that moved, and a frozen BN that updated its statistics. */
class FrozenGuardTest {

    @Test
    void aChangedFrozenWeightIsAHardFailureNamingIt() {
        try (FineTuner ft = FineTuner.builder().headClasses(4).policy(FreezePolicy.linearProbe())
                .optimizer(OptimizerSettings.sgd(0.1, 0.9)).seed(0).build()) {
            FrozenGuard guard = FrozenGuard.capture(ft.model(), ft.plan());
            assertEquals(100, guard.guarded().size(), "60 frozen parameters + 40 frozen BN statistics");
            assertEquals(100, guard.verify(ft.model(), ft.plan()));
            NDArray w = ft.model().namedTensors().get("layer2.1.conv2.weight").getArray();
            try (var g = Engines.noGrad()) {
                w.addi(1e-6f);
            }
            FinetuneException e = assertThrows(FinetuneException.class, () -> guard.verify(ft.model(), ft.plan()));
            assertEquals(ErrorKind.INTERNAL, e.kind());
            assertTrue(e.getMessage().contains("layer2.1.conv2.weight"), e.getMessage());
        }
    }

    @Test
    void bnTrainPolicyLetsStatisticsMoveAndTheGuardDoesNotClaimThem() {
        FreezePolicy trap = new FreezePolicy(false, -1, List.of(FreezePolicy.Rule.train("r", "fc.*")), BnPolicy.TRAIN);
        try (FineTuner ft = FineTuner.builder().headClasses(4).policy(trap)
                .optimizer(OptimizerSettings.sgd(0.1, 0.9)).seed(0).build()) {
            FrozenGuard guard = FrozenGuard.capture(ft.model(), ft.plan());
            assertEquals(60, guard.guarded().size(), "statistics of BN layers in train mode are not guarded");
            float before = ft.model().namedTensors().get("bn1.running_mean").getArray().toFloatArray()[0];
            NDArray x = ft.manager().randomNormal(new Shape(2, 3, 32, 32));
            ft.trainStep(x, ft.manager().create(new long[] {0, 1}));
            float after = ft.model().namedTensors().get("bn1.running_mean").getArray().toFloatArray()[0];
            assertTrue(before != after, "batchnorm: train updates statistics of a frozen backbone, as PyTorch does");
            assertEquals(60, guard.verify(ft.model(), ft.plan()));
        }
    }

    @Test
    void defaultFrozenBnKeepsItsStatisticsThroughTrainingForwards() {
        try (FineTuner ft = FineTuner.builder().headClasses(4).policy(FreezePolicy.linearProbe())
                .optimizer(OptimizerSettings.sgd(0.1, 0.9)).seed(0).build()) {
            FrozenGuard guard = FrozenGuard.capture(ft.model(), ft.plan());
            NDArray x = ft.manager().randomNormal(new Shape(2, 3, 32, 32));
            for (int i = 0; i < 3; i++) {
                ft.trainStep(x, ft.manager().create(new long[] {0, 1}));
            }
            assertEquals(100, guard.verify(ft.model(), ft.plan()));
        }
    }
}
