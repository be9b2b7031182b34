package dev.finetune.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.finetune.checkpoint.HostTensor;
import dev.finetune.config.ConfigLoader;
import dev.finetune.run.TrainJob;
import dev.finetune.run.TrainingCheckpoint;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Training on cached prefix features reaches the same weights as running the frozen prefix every step. */
class FeatureCacheEquivalenceTest {
    @TempDir
    Path tmp;

    @Test
    void cachedAndUncachedLinearProbesTrainToTheSameWeights() throws Exception {
        Path cfg = Cli.config(tmp, "cache", "{default: freeze, rules: [{train: \"fc.*\"}]}",
                "{epochs: 3, batch_size: 16, seed: 3}", Cli.smallData(tmp.resolve("data"), 16, 4));
        TrainJob.Result cached = TrainJob.start(ConfigLoader.load(cfg, List.of()), tmp.resolve("cached"),
                List.of());
        TrainJob.Result plain = TrainJob.start(ConfigLoader.load(cfg, List.of("train.feature_cache=false")),
                tmp.resolve("plain"), List.of());
        assertTrue(cached.summary().featureCacheUsed());
        assertFalse(plain.summary().featureCacheUsed());
        Map<String, HostTensor> a = TrainingCheckpoint.read(tmp.resolve("cached/checkpoints/last.safetensors"))
                .checkpoint().tensors();
        Map<String, HostTensor> b = TrainingCheckpoint.read(tmp.resolve("plain/checkpoints/last.safetensors"))
                .checkpoint().tensors();
        for (String k : List.of("fc.weight", "fc.bias")) {
            float[] x = a.get(k).data();
            float[] y = b.get(k).data();
            double worst = 0;
            for (int i = 0; i < x.length; i++) {
                worst = Math.max(worst, Math.abs(x[i] - y[i]));
            }
            assertTrue(worst < 1e-5, k + " differs by " + worst);
        }
        assertEquals(cached.summary().valTop1(), plain.summary().valTop1(), 1e-9);
    }
}
