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
