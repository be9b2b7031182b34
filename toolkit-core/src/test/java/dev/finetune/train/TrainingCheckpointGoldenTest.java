package dev.finetune.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.finetune.checkpoint.CheckpointException;
import dev.finetune.checkpoint.CheckpointFormat;
import dev.finetune.optim.OptimizerSettings;
import dev.finetune.policy.FreezePolicy;
import dev.finetune.run.TrainingCheckpoint;
import java.io.InputStream;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The toolkit's checkpoint format, version 1: metadata written by the version that introduced it (the golden file,
 * taken from a real quickstart run's {@code last.safetensors}) still reads, and what is written now has the same
 * layout.
 */
class TrainingCheckpointGoldenTest {
    @TempDir
    Path tmp;

    private static Map<String, String> golden() throws Exception {
        try (InputStream in = TrainingCheckpointGoldenTest.class.getResourceAsStream(
                "/golden/finetune-checkpoint-v1-metadata.json")) {
            return new ObjectMapper().readValue(in, new TypeReference<Map<String, String>>() {});
        }
    }

    @Test
    void version1MetadataStillReads() throws Exception {
        TrainingCheckpoint.Meta meta = TrainingCheckpoint.meta(Path.of("golden"), golden());
        assertEquals("resnet18", meta.arch());
        assertEquals(List.of("ankle_boot", "bag", "sandal", "shirt", "sneaker"), meta.classNames());
        assertEquals(32, meta.preprocessing().imageSize());
        assertEquals(32, meta.preprocessing().resize());
        assertEquals(15, meta.state().epochsCompleted());
        assertEquals(240, meta.state().globalStep());
        assertEquals(0.875, meta.state().best());
        assertTrue(Double.isNaN(meta.state().earlyStoppingBest()));
        assertEquals("sgd", meta.optimizerName());
        assertEquals(null, meta.runTime(), "a file from before checkpoints kept the run's time has none");
    }

    @Test
    void theRunsTimeTravelsInTheMetadataAndNonsenseThereIsRefused() throws Exception {
        Map<String, String> md = new HashMap<>(golden());
        md.put("run_time", "{\"seconds\":812.5,\"peakRssBytes\":1600000000,\"segments\":2}");
        assertEquals(new dev.finetune.run.RunTime(812.5, 1_600_000_000L, 2),
                TrainingCheckpoint.meta(Path.of("c.safetensors"), md).runTime());
        for (String bad : List.of("{\"seconds\":-1,\"peakRssBytes\":0,\"segments\":1}",
                "{\"seconds\":5,\"peakRssBytes\":0,\"segments\":0}", "[1, 2]", "{\"seconds\":\"x\"}")) {
            md.put("run_time", bad);
            CheckpointException e = assertThrows(CheckpointException.class,
                    () -> TrainingCheckpoint.meta(Path.of("c.safetensors"), md), bad);
            assertTrue(e.getMessage().startsWith("c.safetensors: finetune checkpoint metadata is damaged"),
                    e.getMessage());
        }
    }

    @Test
    void writtenNowHasTheVersion1Layout() throws Exception {
        Map<String, String> golden = golden();
        Path file = tmp.resolve("c.safetensors");
        try (FineTuner ft = FineTuner.builder().headClasses(3).policy(FreezePolicy.linearProbe())
                .optimizer(OptimizerSettings.sgd(0.1, 0.9)).seed(0).build()) {
            TrainingCheckpoint.write(file, ft, new TrainingCheckpoint.Meta("resnet18", List.of("a", "b", "c"),
                    new TrainingCheckpoint.Preprocessing(32, 36, new float[] {0.5f, 0.5f, 0.5f},
                            new float[] {0.25f, 0.25f, 0.25f}),
                    TrainState.start(7), "name: x\n", "sgd"), true, "F32");
        }
        TrainingCheckpoint.Loaded back = TrainingCheckpoint.read(file);
        assertEquals(CheckpointFormat.FINETUNE, back.checkpoint().format());
        assertEquals(golden.keySet(), back.checkpoint().metadata().keySet());
        assertEquals(golden.get("format"), back.checkpoint().metadata().get("format"));
        assertEquals(golden.get("format_version"), back.checkpoint().metadata().get("format_version"));
        assertEquals(List.of("a", "b", "c"), back.meta().classNames());
        assertEquals(7, back.meta().state().seed());
        assertEquals(122, back.checkpoint().tensors().keySet().stream().filter(k -> !k.startsWith("optimizer."))
                .count(), "a full torchvision state_dict, num_batches_tracked included");
    }

    @Test
    void anUnknownVersionIsRefusedWithTheVersionNamed() throws Exception {
        Map<String, String> future = new HashMap<>(golden());
        future.put("format_version", "2");
        CheckpointException e = assertThrows(CheckpointException.class,
                () -> TrainingCheckpoint.meta(Path.of("future.safetensors"), future));
        assertTrue(e.getMessage().startsWith("future.safetensors: finetune checkpoint format_version 2 is not"
                + " supported"), e.getMessage());
    }
}
