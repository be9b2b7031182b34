package dev.finetune.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.finetune.checkpoint.HostTensor;
import dev.finetune.config.ConfigLoader;
import dev.finetune.run.TrainJob;
import dev.finetune.run.TrainingCheckpoint;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The example app runs the same loop as {@code finetune train}: built from objects, it reaches the weights a config-
 * driven run of configs/quickstart.yaml reaches, to the bit.
 */
class FineTuneAppTest {
    @TempDir
    Path tmp;

    @Test
    void theAppsLoopIsTheCommandLinesLoop() {
        Path repo = Path.of("").toAbsolutePath();
        while (!Files.isDirectory(repo.resolve("models"))) {
            repo = repo.getParent();
        }
        FineTuneApp.Outcome app = FineTuneApp.run(repo.resolve("models/resnet18-fmnist-a.safetensors"),
                repo.resolve("data/fashion-mnist-b"), 2);
        assertTrue(List.of("ankle_boot", "bag", "sandal", "shirt", "sneaker").contains(app.predicted()),
                app.predicted());
        assertEquals(2, app.state().epochsCompleted());

        TrainJob.Result cli = TrainJob.start(ConfigLoader.load(repo.resolve("configs/quickstart.yaml"),
                List.of("train.epochs=2")), tmp.resolve("run"), List.of());
        assertEquals(app.state().globalStep(), cli.state().globalStep());
        Map<String, HostTensor> t = TrainingCheckpoint.read(tmp.resolve("run/checkpoints/last.safetensors"))
                .checkpoint().tensors();
        assertEquals(0.0, maxDiff(app.fcWeight(), t.get("fc.weight").data()), "fc.weight, to the bit");
        assertEquals(0.0, maxDiff(app.fcBias(), t.get("fc.bias").data()), "fc.bias, to the bit");
    }

    private static double maxDiff(float[] a, float[] b) {
        assertEquals(a.length, b.length);
        double m = 0;
        for (int i = 0; i < a.length; i++) {
            m = Math.max(m, Math.abs(a[i] - b[i]));
        }
        return m;
    }
}
