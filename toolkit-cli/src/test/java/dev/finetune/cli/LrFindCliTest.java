package dev.finetune.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code finetune lr-find}: its own folder, a plot and a CSV, a suggestion; no run folder anywhere. */
class LrFindCliTest {
    @TempDir
    Path tmp;

    @Test
    void writesItsPlotAndSuggestsARate() throws Exception {
        Path out = tmp.resolve("lr");
        Cli.Result r = Cli.run("lr-find", "-c", Cli.repo().resolve("configs/quickstart.yaml").toString(), "--out",
                out.toString(), "--steps", "40", "--json");
        assertEquals(0, r.code(), r.err());
        JsonNode j = new ObjectMapper().readTree(r.out());
        assertTrue(Files.size(Path.of(j.get("plot").asText())) > 1000, "a PNG");
        assertEquals(41, Files.readAllLines(Path.of(j.get("csv").asText())).size(), "header and one row per step");
        assertTrue(j.get("feature_cache").asBoolean());
        double lr = j.get("suggested_lr").asDouble();
        assertTrue(lr > 1e-7 && lr < 10, "suggested " + lr);
        try (var files = Files.list(out)) {
            assertEquals(2, files.count(), "only lr_find.csv and lr_find.png");
        }
    }
}
