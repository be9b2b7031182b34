package dev.finetune.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code finetune advise} on the quickstart config (the Fashion-MNIST A checkpoint, classes B): a row per stage
 * boundary, probes that beat chance where the features are trained, a recommendation that follows the stated rule,
 * its three files and no run folder.
 */
class AdviseCliTest {
    @TempDir
    Path tmp;

    @Test
    void recommendsTheDeepestBoundaryWithinToleranceOfTheBestProbe() throws Exception {
        Path out = tmp.resolve("advice");
        Cli.Result r = Cli.run("advise", "-c", Cli.repo().resolve("configs/quickstart.yaml").toString(), "--out",
                out.toString(), "--timing-steps", "1", "--json");
        assertEquals(0, r.code(), r.err());
        JsonNode j = new ObjectMapper().readTree(r.out());
        JsonNode cuts = j.get("cuts");
        List<String> stages = List.of("stem", "layer1", "layer2", "layer3", "layer4");
        assertEquals(stages.size(), cuts.size());
        double best = 0;
        long lastTrainable = Long.MAX_VALUE;
        for (int i = 0; i < cuts.size(); i++) {
            JsonNode c = cuts.get(i);
            assertEquals(stages.get(i), c.get("frozen_through").asText());
            best = Math.max(best, c.get("probe_val_top1").asDouble());
            long trainable = c.get("trainable_parameters").asLong();
            assertTrue(trainable < lastTrainable, "deeper boundaries train less: " + c);
            lastTrainable = trainable;
            assertTrue(c.get("step_ms_images").asDouble() > 0 && c.get("step_ms_cached").asDouble() > 0, c.toString());
        }
        assertEquals(2565, cuts.get(4).get("trainable_parameters").asLong(), "frozen through layer4: fc(512, 5)");
        // The checkpoint was trained on the sibling classes: its last stage's features separate the new ones well
        // above chance (0.2).
        assertTrue(cuts.get(4).get("probe_val_top1").asDouble() > 0.6, cuts.get(4).toString());
        String rec = j.get("recommended").asText();
        int k = stages.indexOf(rec);
        double tol = j.get("tolerance").asDouble();
        assertTrue(cuts.get(k).get("probe_val_top1").asDouble() >= best - tol - 1e-9, j.toString());
        for (int i = k + 1; i < cuts.size(); i++) {
            assertTrue(cuts.get(i).get("probe_val_top1").asDouble() < best - tol, "deeper and within tolerance: "
                    + cuts.get(i));
        }
        assertTrue(j.get("verdict").asText().contains(rec), j.get("verdict").asText());
        assertTrue(Files.size(Path.of(j.get("plot").asText())) > 1000, "a PNG");
        assertEquals(7, Files.readAllLines(Path.of(j.get("csv").asText())).size(), "header, 5 boundaries, full");
        try (var files = Files.list(out)) {
            assertEquals(3, files.count(), "only advise.csv, advise.json and advise.png");
        }
    }

    @Test
    void badOptionsAreUsageErrors() {
        Cli.Result r = Cli.run("advise", "-c", Cli.repo().resolve("configs/quickstart.yaml").toString(),
                "--tolerance", "-1");
        assertEquals(dev.finetune.ErrorKind.USAGE.exitCode(), r.code(), r.err());
        assertTrue(r.err().contains("need 0 <= --tolerance <= 100"), r.err());
    }
}
