package dev.finetune.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.finetune.checkpoint.Checkpoint;
import dev.finetune.checkpoint.Checkpoints;
import dev.finetune.checkpoint.SafetensorsWriter;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.zip.CRC32;
import java.util.zip.Deflater;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What a new user and a hostile file hit in the first hour (issue #11), each through the real command line: exported
 * files that remember their classes, checkpoint metadata and images that try to exhaust memory, links out of the data
 * folder, runs without validation, and the small messages that confused.
 */
class FirstHourTest {
    private static final String LINEAR_PROBE = "{default: freeze, rules: [{train: \"fc.*\"}]}";
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    static Path tmp;

    static Path data;
    static Path run;

    @BeforeAll
    static void trainOnce() throws Exception {
        data = Cli.smallData(tmp.resolve("data"), 8, 2);
        Path cfg = Cli.config(tmp, "first", LINEAR_PROBE, "{epochs: 2, batch_size: 16}", data);
        run = tmp.resolve("run");
        Cli.Result r = Cli.run("train", "-c", cfg.toString(), "--run-dir", run.toString(), "--quiet");
        assertEquals(0, r.code(), r.err());
    }

    @Test
    void anExportedFileRemembersItsClassesAndPreprocessing() throws Exception {
        Path out = tmp.resolve("exports/sub/model.pth");
        Cli.Result export = Cli.run("export", "--checkpoint", run.toString(), "--format", "pth", "--out",
                out.toString());
        assertEquals(0, export.code(), "the --out folder is created: " + export.err());
        Path image = data.resolve("val/bag").toFile().listFiles()[0].toPath();
        JsonNode fromRun = JSON.readTree(Cli.run("predict", "--checkpoint", run.toString(), "--json",
                image.toString()).out());
        JsonNode fromExport = JSON.readTree(Cli.run("predict", "--checkpoint", out.toString(), "--json",
                image.toString()).out());
        JsonNode a = fromRun.get("predictions").get(0).get("top");
        JsonNode b = fromExport.get("predictions").get(0).get("top");
        assertEquals(a.get(0).get("label").asText(), b.get(0).get("label").asText(), "class names from the sidecar");
        assertFalse(b.get(0).get("label").asText().startsWith("class_"), b.toString());
        assertEquals(a.get(0).get("probability").asDouble(), b.get(0).get("probability").asDouble(), 1e-6);
        Cli.Result evaluate = Cli.run("evaluate", "--checkpoint", out.toString(), "--data", data.toString());
        assertEquals(0, evaluate.code(), "the real class folders are accepted: " + evaluate.err());

        Cli.Result again = Cli.run("export", "--checkpoint", run.toString(), "--format", "pth", "--out",
                out.toString());
        assertEquals(7, again.code());
        assertTrue(again.err().contains("already exists; choose another --out, or add --force"), again.err());
        assertEquals(0, Cli.run("export", "--checkpoint", run.toString(), "--format", "pth", "--out", out.toString(),
                "--force").code());

        Path st = tmp.resolve("exports/model.safetensors");
        assertEquals(0, Cli.run("export", "--checkpoint", run.toString(), "--format", "safetensors", "--out",
                st.toString()).code());
        String line = JSON.readTree(tmp.resolve("exports/model.safetensors.json").toFile()).get("load_in_python")
                .asText();
        assertTrue(line.startsWith("from safetensors.torch import load_file;") && line.contains(
                "load_file('model.safetensors')") && !line.contains("torch.load"), line);
        Cli.Result f16 = Cli.run("export", "--checkpoint", run.toString(), "--format", "pth", "--dtype", "f16",
                "--out", tmp.resolve("exports/x.pth").toString());
        assertEquals(2, f16.code());
        assertEquals("error: --dtype f16 works with --format safetensors only; --format pth is written in f32\n",
                f16.err());
    }

    @Test
    void hostileCheckpointMetadataEndsInExitFive() throws Exception {
        Checkpoint c = Checkpoints.read(run.resolve("checkpoints/best.safetensors").toString());
        Path image = data.resolve("val/bag").toFile().listFiles()[0].toPath();
        Map<String, String> cases = new LinkedHashMap<>();
        cases.put("{\"imageSize\":30000,\"resize\":30000,\"mean\":[0.5,0.5,0.5],\"std\":[0.5,0.5,0.5]}",
                "image size 30000 and resize 30000; both must be 8 to 4096");
        int i = 0;
        for (var e : cases.entrySet()) {
            Map<String, String> md = new LinkedHashMap<>(c.metadata());
            md.put("preprocessing", e.getKey());
            assertExitFive(write(c, md, "prep" + i++), image, e.getValue());
        }
        for (String names : List.of("[]", "[null,\"a\",\"b\",\"c\",\"d\"]", "[\"a\",\"b\"]",
                "[\"a\",\"b\",\"c\",\"d\",\"e\\u001b[2J\"]", "[\"a\",\"b\",\"c\",\"d\",\"e\\nfake 100.00%  cat\"]")) {
            Map<String, String> md = new LinkedHashMap<>(c.metadata());
            md.put("class_names", names);
            assertExitFive(write(c, md, "names" + i++), image, "class");
        }
    }

    private static Path write(Checkpoint c, Map<String, String> md, String name) {
        Path f = tmp.resolve(name + ".safetensors");
        SafetensorsWriter.write(f, c.tensors(), md, "F32");
        return f;
    }

    private static void assertExitFive(Path checkpoint, Path image, String says) {
        Cli.Result r = Cli.run("predict", "--checkpoint", checkpoint.toString(), image.toString());
        assertEquals(5, r.code(), checkpoint + ": " + r.err() + r.out());
        assertTrue(r.err().contains(says), r.err());
        assertFalse(r.err().contains("\tat "), r.err());
    }

    @Test
    void aDecompressionBombIsABadImage() throws Exception {
        Path bombs = Files.createDirectories(tmp.resolve("bomb"));
        Path bomb = bombs.resolve("bomb.png");
        Files.write(bomb, png(30000, 30000));
        Cli.Result r = Cli.run("predict", "--checkpoint", run.toString(), bomb.toString());
        assertEquals(4, r.code(), r.err());
        assertTrue(r.err().contains("30000x30000 pixels, more than the 100000000 allowed"), r.err());

        Path d = Cli.smallData(tmp.resolve("bombdata"), 8, 2);
        Files.write(d.resolve("train/bag/bomb.png"), png(20000, 20000));
        Path cfg = Cli.config(tmp, "bomb", LINEAR_PROBE, "{epochs: 1, batch_size: 16}", d);
        Cli.Result fail = Cli.run("train", "-c", cfg.toString(), "--run-dir", tmp.resolve("bomb-fail").toString());
        assertEquals(4, fail.code(), fail.err());
        Cli.Result skip = Cli.run("train", "-c", cfg.toString(), "--run-dir", tmp.resolve("bomb-skip").toString(),
                "--set", "data.on_bad_image=skip", "--quiet");
        assertEquals(0, skip.code(), skip.err());
        JsonNode summary = JSON.readTree(tmp.resolve("bomb-skip/summary.json").toFile());
        assertEquals(1, summary.get("skipped_images").size(), summary.toString());
    }

    /** A grey PNG whose header claims {@code w x h}; its image data is one deflated row (the header is the bomb). */
    private static byte[] png(int w, int h) throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.write(new byte[] {(byte) 0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A});
        ByteBuffer ihdr = ByteBuffer.allocate(13).putInt(w).putInt(h).put((byte) 8).put((byte) 0).put((byte) 0)
                .put((byte) 0).put((byte) 0);
        chunk(out, "IHDR", ihdr.array());
        Deflater d = new Deflater();
        d.setInput(new byte[w + 1]);
        d.finish();
        byte[] buf = new byte[w + 64];
        int n = d.deflate(buf);
        chunk(out, "IDAT", java.util.Arrays.copyOf(buf, n));
        chunk(out, "IEND", new byte[0]);
        return out.toByteArray();
    }

    private static void chunk(ByteArrayOutputStream out, String type, byte[] body) throws Exception {
        out.write(ByteBuffer.allocate(4).putInt(body.length).array());
        byte[] t = type.getBytes(StandardCharsets.US_ASCII);
        out.write(t);
        out.write(body);
        CRC32 crc = new CRC32();
        crc.update(t);
        crc.update(body);
        out.write(ByteBuffer.allocate(4).putInt((int) crc.getValue()).array());
    }

    @Test
    void linksOutOfTheDataFolderAreRefused() throws Exception {
        Path d = Cli.smallData(tmp.resolve("linkdata"), 8, 2);
        Path outside = Files.createDirectories(tmp.resolve("outside"));
        Files.copy(data.resolve("train/bag").toFile().listFiles()[0].toPath(), outside.resolve("x.png"));
        Files.createSymbolicLink(d.resolve("train/bag/escape"), outside);
        Path cfg = Cli.config(tmp, "links", LINEAR_PROBE, "{epochs: 1, batch_size: 16}", d);
        Cli.Result r = Cli.run("train", "-c", cfg.toString(), "--run-dir", tmp.resolve("links-run").toString());
        assertEquals(4, r.code(), r.err());
        assertTrue(r.err().contains("is a symbolic link out of the data folder"), r.err());
        Files.delete(d.resolve("train/bag/escape"));
        // A link that stays inside is fine.
        Files.createSymbolicLink(d.resolve("train/bag/inside"), d.resolve("train/sandal"));
        assertEquals(0, Cli.run("train", "-c", cfg.toString(), "--run-dir", tmp.resolve("links-ok").toString(),
                "--quiet").code());
    }

    @Test
    void withoutValidationTheBestIsByTrainLossAndSaidLoudly() throws Exception {
        Path flat = Files.createDirectories(tmp.resolve("flat"));
        Path small = Cli.smallData(tmp.resolve("flatsrc"), 6, 1);
        try (var classes = Files.list(small.resolve("train"))) {
            for (Path c : classes.toList()) {
                Files.move(c, flat.resolve(c.getFileName()));
            }
        }
        Path cfg = Cli.config(tmp, "flat", LINEAR_PROBE, "{epochs: 2, batch_size: 10}", flat);
        Path r = tmp.resolve("flat-run");
        Cli.Result train = Cli.run("train", "-c", cfg.toString(), "--run-dir", r.toString(), "--quiet");
        assertEquals(0, train.code(), train.err());
        assertTrue(train.out().contains("warning: there is no validation set"), train.out());
        assertTrue(train.out().matches("(?s).*best train_loss: [0-9.]+ in epoch [12] \\(checkpoints/best.safetensors\\)"
                + ".*"), train.out());
        JsonNode summary = JSON.readTree(r.resolve("summary.json").toFile());
        assertEquals("train_loss", summary.get("best_metric").asText());
        assertFalse(summary.get("validation").asBoolean());
        assertTrue(Files.exists(r.resolve(summary.get("best_checkpoint").asText())), summary.toString());
        assertTrue(summary.get("best_epoch").asInt() >= 1);
    }

    @Test
    void smallMessagesSayTheRightThing() throws Exception {
        Cli.Result typo = Cli.run("tarin");
        assertEquals(2, typo.code());
        assertTrue(typo.err().contains("Did you mean") && typo.err().contains("train"), typo.err());

        Cli.Result folder = Cli.run("predict", "--checkpoint", run.toString(), "--top-k", "1",
                data.resolve("val/bag").toString());
        assertEquals(0, folder.code(), folder.err());
        assertEquals(2, folder.out().lines().filter(l -> l.endsWith(".png")).count(), "each image of the folder: "
                + folder.out());

        Cli.Result inspect = Cli.run("checkpoint", "inspect",
                Cli.repo().resolve("models/resnet18-fmnist-a.safetensors").toString());
        assertTrue(inspect.out().contains("tensors:  122: 11,179,077 parameters, 9,620 buffer values"),
                inspect.out());

        Path cfg = Cli.config(tmp, "aug", LINEAR_PROBE, "{epochs: 1}", data);
        Files.writeString(cfg, Files.readString(cfg).replace("augment: false", "augment: true"));
        Cli.Result aug = Cli.run("inspect", "-c", cfg.toString());
        assertEquals(0, aug.code(), aug.err());
        assertTrue(aug.out().contains("not cached: random augmentation (data.augment or train.mixup) changes its input every epoch"), aug.out());
        assertFalse(aug.out().contains("(cacheable)"), aug.out());

        Cli.Result probe = Cli.run("inspect", "-c", Cli.config(tmp, "probe", LINEAR_PROBE, "{epochs: 1}", data)
                .toString());
        assertTrue(probe.out().contains("new head (model.head): fc.weight [5, 512] starts fresh; the checkpoint's is"
                + " not loaded"), probe.out());
        assertFalse(probe.out().contains("checkpoint [5, 512], model [5, 512]"), probe.out());
    }

    @Test
    void sigtermDuringEvaluateStopsInOrder() throws Exception {
        // A copy of the embedded model with a sidecar asking for 224-pixel inputs, on the 500 training images:
        // evaluation takes long enough to be interrupted, and the sidecar is what names the classes.
        Path model = tmp.resolve("slow.safetensors");
        Files.copy(Cli.repo().resolve("models/resnet18-fmnist-a.safetensors"), model);
        Map<String, Object> side = new LinkedHashMap<>();
        side.put("format_version", 1);
        side.put("weights", "slow.safetensors");
        side.put("arch", "resnet18");
        side.put("class_names", List.of("ankle_boot", "bag", "sandal", "shirt", "sneaker"));
        side.put("preprocessing", Map.of("resize_shorter_side", 256, "center_crop", 224,
                "mean", List.of(0.5, 0.5, 0.5), "std", List.of(0.5, 0.5, 0.5)));
        JSON.writeValue(tmp.resolve("slow.safetensors.json").toFile(), side);
        Path log = tmp.resolve("evaluate.log");
        Process p = Cli.start(log, "evaluate", "--checkpoint", model.toString(), "--data",
                Cli.repo().resolve("data/fashion-mnist-b/train").toString());
        Thread.sleep(4000);
        Cli.signal(p, "TERM");
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "evaluate did not stop");
        String out = Files.readString(log);
        assertEquals(143, p.exitValue(), out);
        assertFalse(out.contains("SIGSEGV") || out.contains("hs_err"), out);
    }
}
