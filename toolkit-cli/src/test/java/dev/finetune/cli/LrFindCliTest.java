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
                out.toString(), "--steps", "20", "--json");
        assertEquals(0, r.code(), r.err());
        JsonNode j = new ObjectMapper().readTree(r.out());
        assertTrue(Files.size(Path.of(j.get("plot").asText())) > 1000, "a PNG");
        assertEquals(21, Files.readAllLines(Path.of(j.get("csv").asText())).size(), "header and one row per step");
        assertTrue(j.get("feature_cache").asBoolean());
        double lr = j.get("suggested_lr").asDouble();
        assertTrue(lr > 1e-7 && lr < 10, "suggested " + lr);
        try (var files = Files.list(out)) {
            assertEquals(2, files.count(), "only lr_find.csv and lr_find.png");
        }
    }

    /** Bad inference and range-test options are usage errors naming the option and the allowed values. */
    @Test
    void badOptionsAreUsageErrors() {
        Cli.Result tta = Cli.run("predict", "--checkpoint", Cli.repo().resolve("models/resnet18-fmnist-a.safetensors")
                .toString(), "--tta", "mirror", Cli.repo().resolve("data/fashion-mnist-b/val/bag/00018.png").toString());
        assertEquals(dev.finetune.ErrorKind.USAGE.exitCode(), tta.code(), tta.err());
        assertTrue(tta.err().contains("--tta must be none, flip or five-crop, found 'mirror'"), tta.err());
        String model = Cli.repo().resolve("models/resnet18-fmnist-a.safetensors").toString();
        String image = Cli.repo().resolve("data/fashion-mnist-b/val/bag/00018.png").toString();
        // This model resizes to 32 and crops 32: five-crop would be one image five times.
        Cli.Result fiveCrop = Cli.run("predict", "--checkpoint", model, "--tta", "five-crop", image);
        assertEquals(dev.finetune.ErrorKind.USAGE.exitCode(), fiveCrop.code(), fiveCrop.err());
        assertTrue(fiveCrop.err().contains("resizes to 32 px and crops 32 px") && fiveCrop.err().contains("--tta flip"),
                fiveCrop.err());
        Cli.Result precision = Cli.run("predict", "--checkpoint", model, "--precision", "fp16", image);
        assertEquals(dev.finetune.ErrorKind.USAGE.exitCode(), precision.code(), precision.err());
        assertTrue(precision.err().contains("--precision must be fp32 or bf16, found 'fp16'"), precision.err());
        Cli.Result mixed = Cli.run("predict", "--checkpoint", model, "--precision", "bf16-mixed", image);
        assertEquals(dev.finetune.ErrorKind.USAGE.exitCode(), mixed.code(), mixed.err());
        assertTrue(mixed.err().contains("--precision must be fp32 or bf16, found 'bf16-mixed' (mixed precision is for"
                + " training: train.precision in the config)"), mixed.err());
        System.setProperty(dev.finetune.engine.CpuFeatures.FLAGS_PROPERTY, "avx2 avx512f");
        try {
            Cli.Result noBf16 = Cli.run("predict", "--checkpoint", model, "--precision", "bf16", image);
            assertEquals(dev.finetune.ErrorKind.USAGE.exitCode(), noBf16.code(), noBf16.err());
            assertTrue(noBf16.err().contains("--precision bf16: bf16 needs a CPU with bfloat16 instructions"
                    + " (avx512_bf16 or amx_bf16)") && noBf16.err().contains("; drop --precision"), noBf16.err());
        } finally {
            System.clearProperty(dev.finetune.engine.CpuFeatures.FLAGS_PROPERTY);
        }
        Cli.Result range = Cli.run("lr-find", "-c", Cli.repo().resolve("configs/quickstart.yaml").toString(),
                "--min-lr", "1", "--max-lr", "0.1");
        assertEquals(dev.finetune.ErrorKind.USAGE.exitCode(), range.code(), range.err());
        assertTrue(range.err().contains("need 0 < --min-lr < --max-lr and --steps >= 2"), range.err());
    }
}
