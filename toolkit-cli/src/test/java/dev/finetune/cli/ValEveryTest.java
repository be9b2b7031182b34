package dev.finetune.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.finetune.checkpoint.HostTensor;
import dev.finetune.config.ConfigLoader;
import dev.finetune.metrics.MetricsLog;
import dev.finetune.run.RunSummary;
import dev.finetune.run.TrainJob;
import dev.finetune.run.TrainingCheckpoint;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code train.val_every}: validation (and the EMA's) after every N-th epoch and the last only; the metrics log keeps
 * one set of columns (empty cells between), the best checkpoint comes from a validated epoch, and the training itself
 * is bit for bit the run that validates every epoch.
 */
class ValEveryTest {
    @TempDir
    Path tmp;

    /** layer4 and fc train (BN statistics update there), so validation would show if it disturbed training. */
    private static final String LAST_STAGE = "{default: freeze, rules: [{train: [layer4, fc]}]}";

    @Test
    void validatesEveryNthEpochAndTheLastWithoutChangingTraining() throws Exception {
        Path data = Cli.smallData(tmp.resolve("data"), 8, 2);
        String train = "{epochs: 5, batch_size: 16, seed: 2, ema: {decay: 0.9}, val_every: 2}";
        Path cfg = Cli.config(tmp, "sparse", LAST_STAGE, train, data);
        TrainJob.Result sparse = TrainJob.start(ConfigLoader.load(cfg, List.of()), tmp.resolve("sparse"), List.of());
        TrainJob.Result every = TrainJob.start(ConfigLoader.load(cfg, List.of("train.val_every=1")),
                tmp.resolve("every"), List.of());

        List<JsonNode> rows = new ArrayList<>();
        for (String line : Files.readAllLines(tmp.resolve("sparse/metrics.jsonl"))) {
            rows.add(new ObjectMapper().readTree(line));
        }
        assertEquals(5, rows.size());
        List<Integer> validated = new ArrayList<>();
        for (JsonNode r : rows) {
            JsonNode top1 = r.get("val_top1");
            if (top1 != null && top1.isNumber()) {
                validated.add(r.get("epoch").asInt());
            }
        }
        assertEquals(List.of(2, 4, 5), validated, "every 2nd epoch and the last");
        for (JsonNode r : rows) {
            JsonNode ema = r.get("ema");
            boolean has = ema != null && ema.get("val_top1") != null && ema.get("val_top1").isNumber();
            assertEquals(validated.contains(r.get("epoch").asInt()), has, "the EMA is validated with the model: " + r);
        }
        assertEquals(5, MetricsLog.read(tmp.resolve("sparse/metrics.csv")).size(), "one CSV row per epoch");
        assertTrue(Files.size(tmp.resolve("sparse/plots/curves.png")) > 0);

        RunSummary s = RunSummary.read(tmp.resolve("sparse"));
        assertEquals(5, s.epochsCompleted());
        assertEquals(rows.get(4).get("val_top1").asDouble(), s.valTop1(), 1e-12);
        assertTrue(List.of(2, 4, 5).contains(s.bestEpoch()), "best from a validated epoch: " + s.bestEpoch());
        // The same validations as the run that validates every epoch, where both validate.
        List<String> everyLines = Files.readAllLines(tmp.resolve("every/metrics.jsonl"));
        for (int e : validated) {
            assertEquals(new ObjectMapper().readTree(everyLines.get(e - 1)).get("val_top1").asDouble(),
                    rows.get(e - 1).get("val_top1").asDouble(), 0.0, "epoch " + e);
        }
        assertEquals(sparse.state().globalStep(), every.state().globalStep());
        Map<String, HostTensor> a = TrainingCheckpoint.read(tmp.resolve("sparse/checkpoints/last.safetensors"))
                .checkpoint().tensors();
        Map<String, HostTensor> b = TrainingCheckpoint.read(tmp.resolve("every/checkpoints/last.safetensors"))
                .checkpoint().tensors();
        assertEquals(a.keySet(), b.keySet());
        for (String k : a.keySet()) {
            assertArrayEquals(b.get(k).data(), a.get(k).data(), k + ": validation changed training");
        }
    }

    @Test
    void earlyStoppingCountsValidations() throws Exception {
        Path data = Cli.smallData(tmp.resolve("data"), 8, 2);
        // No later validation beats the first by 10: stops at the second validated epoch (4), after one validation.
        Path cfg = Cli.config(tmp, "stop", LAST_STAGE, "{epochs: 6, batch_size: 16, val_every: 2,"
                + " early_stopping: {metric: val_loss, patience: 1, min_delta: 10}}", data);
        TrainJob.start(ConfigLoader.load(cfg, List.of()), tmp.resolve("stop"), List.of());
        RunSummary s = RunSummary.read(tmp.resolve("stop"));
        assertEquals(4, s.epochsCompleted());
        assertTrue(s.stoppedEarly().contains("val_loss has not improved for 1 validations (every 2 epochs)"),
                s.stoppedEarly());
    }
}
