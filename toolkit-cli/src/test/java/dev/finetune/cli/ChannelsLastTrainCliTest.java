package dev.finetune.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.finetune.config.ConfigLoader;
import dev.finetune.run.TrainJob;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code train.channels_last} from a config reaches the training steps: {@code true} with frozen BN statistics trains
 * channels-last and run.json's {@code fast_path} has the check that allowed it; {@code false} and no key at all train
 * NCHW and have no such report; with train-mode BN it stays NCHW even when asked.
 */
class ChannelsLastTrainCliTest {
    @TempDir
    Path tmp;

    private List<JsonNode> trainingReports(Path cfg, String channelsLast, String run) throws Exception {
        TrainJob.start(ConfigLoader.load(cfg, channelsLast == null ? List.of()
                : List.of("train.channels_last=" + channelsLast)), tmp.resolve(run), List.of());
        List<JsonNode> out = new ArrayList<>();
        for (JsonNode r : new ObjectMapper().readTree(tmp.resolve(run + "/run.json").toFile()).get("fast_path")) {
            if (r.get("requested").asText().startsWith("training steps")) {
                out.add(r);
            }
        }
        return out;
    }

    /** {@code inspect} says how training steps will run when channels-last is asked for, and why not when it cannot. */
    @Test
    void inspectSaysWhereTrainingStepsRunChannelsLastAndWhyNot() throws Exception {
        Path cfg = Cli.config(tmp, "cl", "{default: train, batchnorm: freeze-stats}", "{epochs: 1, batch_size: 16}");
        Cli.Result plain = Cli.run("inspect", "-c", cfg.toString());
        assertEquals(0, plain.code(), plain.err());
        assertTrue(!plain.out().contains("training steps:"), "the default says nothing: " + plain.out());
        Cli.Result small = Cli.run("inspect", "-c", cfg.toString(), "--set", "train.channels_last=auto");
        assertTrue(small.out().contains("training steps: NCHW (train.channels_last: auto): auto starts at 131072 input"
                + " pixels per batch (N·H·W), this batch has 16384"), small.out());
        Cli.Result on = Cli.run("inspect", "-c", cfg.toString(), "--set", "train.channels_last=true");
        assertTrue(on.out().contains("training steps: channels-last for input (16, 3, 32, 32)"
                + " (train.channels_last: true), checked against NCHW"), on.out());
        Path bn = Cli.config(tmp, "cl-bn", "{default: train, batchnorm: train}", "{epochs: 1, batch_size: 16}");
        Cli.Result refused = Cli.run("inspect", "-c", bn.toString(), "--set", "train.channels_last=true");
        assertTrue(refused.out().contains("training steps: NCHW (train.channels_last: true): a BatchNorm in train mode"
                + " trains"), refused.out());
    }

    @Test
    void theConfigKeyChoosesTheLayoutOfTrainingSteps() throws Exception {
        Path data = Cli.smallData(tmp.resolve("data"), 8, 2);
        Path frozenStats = Cli.config(tmp, "cl", "{default: train, batchnorm: freeze-stats}",
                "{epochs: 1, batch_size: 16, seed: 1}", data);
        List<JsonNode> on = trainingReports(frozenStats, "true", "on");
        assertEquals(1, on.size(), on.toString());
        assertTrue(on.get(0).get("in_use").asText().contains("channels-last"), on.toString());
        assertTrue(on.get(0).get("fallbacks").isEmpty(), on.toString());
        for (JsonNode c : on.get(0).get("checks")) {
            assertTrue(c.get("passed").asBoolean(), on.toString());
        }
        assertEquals(List.of(), trainingReports(frozenStats, "false", "off"));
        assertEquals(List.of(), trainingReports(frozenStats, null, "default"), "off unless asked for");
        Path trainModeBn = Cli.config(tmp, "cl-bn", "{default: train, batchnorm: train}",
                "{epochs: 1, batch_size: 16, seed: 1}", data);
        assertEquals(List.of(), trainingReports(trainModeBn, "true", "bn"));
    }
}
