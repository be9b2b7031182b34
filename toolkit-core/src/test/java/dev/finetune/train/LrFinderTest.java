package dev.finetune.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.finetune.checkpoint.Checkpoints;
import dev.finetune.data.TransformSpec;
import dev.finetune.optim.OptimizerSettings;
import dev.finetune.policy.FreezePolicy;
import dev.finetune.testing.TorchReference;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The learning-rate range test on the quickstart's linear probe: from the feature cache, to divergence, a sane rate. */
class LrFinderTest {

    @Test
    void rangeTestOnALinearProbe() {
        TransformSpec t = new TransformSpec(32, 32, false, false, TransformSpec.defaults().mean(),
                TransformSpec.defaults().std());
        TrainingData data = TrainingData.imageFolder(TorchReference.repoRoot().resolve("data/fashion-mnist-b"), t, 0, 0);
        try (FineTuner ft = FineTuner.builder()
                .checkpoint(Checkpoints.read(TorchReference.repoRoot().resolve("models/resnet18-fmnist-a.safetensors")))
                .headClasses(5).policy(FreezePolicy.linearProbe()).optimizer(OptimizerSettings.sgd(0.01, 0.9))
                .seed(0).build()) {
            LrFinder.Result r = LrFinder.run(ft, data, 32, 0, 1e-6, 100, 80);
            assertTrue(r.featureCache(), "a frozen, deterministic prefix runs from the cache");
            assertTrue(r.stoppedEarly(), "lr up to 100 diverges");
            assertTrue(r.lrs().size() < 80);
            for (int i = 1; i < r.lrs().size(); i++) {
                assertTrue(r.lrs().get(i) > r.lrs().get(i - 1));
            }
            assertEquals(1e-6, r.lrs().get(0), 1e-18);
            System.out.printf("lr-find: %d steps, steepest %.3g, minimum/10 %.3g%n", r.lrs().size(), r.steepest(),
                    r.minimumOver10());
            assertTrue(r.steepest() > 1e-5 && r.steepest() < 10, "suggested " + r.steepest());
            assertTrue(r.minimumOver10() > 1e-6 && r.minimumOver10() < 10, "minimum/10 " + r.minimumOver10());
        }
    }

    @Test
    void suggestionsFromASyntheticCurve() {
        List<Double> lrs = List.of(1e-4, 1e-3, 1e-2, 1e-1, 1.0);
        List<Double> loss = List.of(2.0, 1.9, 1.0, 0.8, 5.0);
        assertEquals(1e-2, LrFinder.steepest(lrs, loss), 1e-15, "the biggest fall is into 1e-2");
        assertEquals(1e-2, LrFinder.minimumOver10(lrs, loss), 1e-15, "minimum at 0.1, over 10");
    }
}
