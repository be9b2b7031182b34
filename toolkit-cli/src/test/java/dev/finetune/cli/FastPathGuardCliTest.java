package dev.finetune.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.finetune.checkpoint.HostTensor;
import dev.finetune.config.ConfigLoader;
import dev.finetune.model.KernelFaults;
import dev.finetune.run.TrainJob;
import dev.finetune.run.TrainingCheckpoint;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code finetune train} on a host whose channels-last kernel is wrong (simulated: the defect an AMD Zen 5 host showed,
 * {@code -Dfinetune.fault.channels_last_conv=512:1:2}) says so once on stderr, records the fallback in run.json and
 * trains to the same weights as the unfolded network.
 */
class FastPathGuardCliTest {
    @TempDir
    Path tmp;

    @Test
    void defectiveHostFallsBackSaysSoOnceAndTrainsAsThePlainNetwork() throws Exception {
        Path cfg = Cli.config(tmp, "guard", "{default: freeze, rules: [{train: \"fc.*\"}]}",
                "{epochs: 2, batch_size: 16, seed: 3}", Cli.smallData(tmp.resolve("data"), 16, 2));
        // The cache's prefix pass runs 56 and 24 of the 80 training images of 96x96 at a time (516,096 and 221,184
        // pixels, FeatureCache.EXTRACTION_PIXELS): channels-last, where the simulated defect is; the 10 validation
        // images (92,160 pixels) run NCHW (GuardedPrefix.SMALL_INPUT_PIXELS) and never meet it.
        Files.writeString(cfg, Files.readString(cfg).replace("image_size: 32\n  resize: 32\n",
                "image_size: 96\n  resize: 96\n"));
        Path log = tmp.resolve("train.log");
        Process p = Cli.start(log, List.of("-D" + KernelFaults.PROPERTY + "=512:1:2"), "train", "-c",
                cfg.toString(), "--run-dir", tmp.resolve("faulty").toString(), "--quiet");
        assertTrue(p.waitFor(240, TimeUnit.SECONDS), "train did not finish");
        String out = Files.readString(log);
        assertEquals(0, p.exitValue(), out);
        String warning = "warning: libtorch's channels-last convolution is wrong on this CPU: layer4.0.downsample.0";
        assertEquals(1, out.split(java.util.regex.Pattern.quote(warning), -1).length - 1, "said exactly once:\n" + out);

        JsonNode run = new ObjectMapper().readTree(tmp.resolve("faulty/run.json").toFile());
        JsonNode fast = run.get("fast_path").get(0);
        assertEquals("folded, scripted, channels-last: stem, layer1, layer2, layer3; NCHW: layer4 (NCHW throughout"
                + " below 131072 input pixels, N·H·W)", fast.get("in_use").asText(),
                fast.toString());
        assertTrue(fast.get("fallbacks").size() == 1 && fast.get("checks").size() >= 1, fast.toString());
        // Per input shape, the last check is the path that runs, and it passed (the first, the scripted call on
        // the defective layout, did not: that is how the guard noticed).
        Map<String, Boolean> lastByInput = new java.util.LinkedHashMap<>();
        for (JsonNode c : fast.get("checks")) {
            lastByInput.put(c.get("input").toString(), c.get("passed").asBoolean());
        }
        assertTrue(lastByInput.values().stream().allMatch(b -> b), fast.toString());
        boolean smallRanNchw = false;
        for (JsonNode c : fast.get("checks")) {
            smallRanNchw |= c.get("input").asText().startsWith("(10, ") && c.get("passed").asBoolean()
                    && c.get("path").asText().equals("folded, scripted, NCHW: stem, layer1, layer2, layer3, layer4");
        }
        assertTrue(smallRanNchw, "the 10-image validation batch runs NCHW: " + fast);

        TrainJob.start(ConfigLoader.load(cfg, List.of("train.fold_frozen_bn=false")), tmp.resolve("plain"),
                List.of());
        JsonNode plainRun = new ObjectMapper().readTree(tmp.resolve("plain/run.json").toFile());
        assertEquals(0, plainRun.get("fast_path").size(), "nothing folded when folding is off");
        Map<String, HostTensor> a = TrainingCheckpoint.read(tmp.resolve("faulty/checkpoints/last.safetensors"))
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
            System.out.printf("%s: guarded run vs unfolded run max diff %.2e%n", k, worst);
            assertTrue(worst < 1e-5, k + " differs by " + worst);
        }
    }
}
