package dev.finetune.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Every error a user can cause: the exact message on stderr, a distinct exit code, no stack trace. */
class CliErrorsTest {
    @TempDir
    Path tmp;

    private static final String LINEAR_PROBE = "{default: freeze, rules: [{train: \"fc.*\"}]}";
    private static final String ONE_EPOCH = "{epochs: 1, batch_size: 32}";

    private static void assertClean(Cli.Result r) {
        assertFalse(r.err().contains("\tat "), "no stack trace for a user error:\n" + r.err());
        assertFalse(r.err().contains("Exception"), "no exception names for a user error:\n" + r.err());
    }

    @Test
    void unknownConfigKeyNamesThePathAndTheKnownKeys() throws Exception {
        Path cfg = Cli.config(tmp, "typo", LINEAR_PROBE, ONE_EPOCH);
        Files.writeString(cfg, Files.readString(cfg).replace("momentum: 0.9", "momentun: 0.9"));
        Cli.Result r = Cli.run("train", "-c", cfg.toString(), "--run-dir", tmp.resolve("r").toString());
        assertEquals(3, r.code());
        assertEquals("error: optimizer.momentun: unknown key 'momentun'; known keys: betas, dampening,"
                + " decay_norm_and_bias, eps, groups, layer_decay, lr, momentum, name, nesterov, weight_decay (in " + cfg + ")\n",
                r.err());
        assertFalse(Files.exists(tmp.resolve("r")), "nothing is created for an invalid config");
    }

    @Test
    void ruleMatchingNothingSuggestsTheNearestNames() throws Exception {
        Path cfg = Cli.config(tmp, "nomatch", "{default: freeze, rules: [{train: \"fc.wieght\"}]}", ONE_EPOCH);
        Cli.Result r = Cli.run("inspect", "-c", cfg.toString());
        assertEquals(3, r.code());
        assertTrue(r.err().startsWith("error: freeze.rules[0].train: pattern 'fc.wieght' matches no parameter of the"
                + " model; nearest names: [fc.weight,"), r.err());
        assertClean(r);
    }

    @Test
    void onnxOptionsAndDtypeAreCheckedAgainstTheFormat() throws Exception {
        String model = Cli.repo().resolve("models/resnet18-fmnist-a.safetensors").toString();
        Cli.Result r = Cli.run("export", "--checkpoint", model, "--format", "pth", "--dynamic-batch", "--out",
                tmp.resolve("x.pth").toString());
        assertEquals(2, r.code(), r.err());
        assertEquals("error: --dynamic-batch and --normalize-in-graph apply to --format onnx only\n", r.err());
        Cli.Result f16 = Cli.run("export", "--checkpoint", model, "--format", "onnx", "--dtype", "f16", "--out",
                tmp.resolve("x.onnx").toString());
        assertEquals(2, f16.code(), f16.err());
        assertEquals("error: --dtype f16 works with --format safetensors only; --format onnx is written in f32\n",
                f16.err());
        Cli.Result fmt = Cli.run("export", "--checkpoint", model, "--format", "tflite", "--out",
                tmp.resolve("x.tflite").toString());
        assertEquals(2, fmt.code(), fmt.err());
        assertTrue(fmt.err().contains("--format: choose pth, safetensors or onnx, found 'tflite'"), fmt.err());
        assertTrue(Files.notExists(tmp.resolve("x.pth")) && Files.notExists(tmp.resolve("x.onnx")));
    }

    @Test
    void batchSizeBelowOneIsAUsageErrorOfPredictAndEvaluate() throws Exception {
        String model = Cli.repo().resolve("models/resnet18-fmnist-a.safetensors").toString();
        Cli.Result p = Cli.run("predict", "--checkpoint", model, "--batch-size", "0",
                Cli.repo().resolve("data/fashion-mnist-b/val/bag/00018.png").toString());
        assertEquals(2, p.code(), p.err());
        assertTrue(p.err().contains("--batch-size must be >= 1, found 0"), p.err());
        Cli.Result e = Cli.run("evaluate", "--checkpoint", model, "--batch-size", "-3", "--data",
                Cli.repo().resolve("data/fashion-mnist-b").toString());
        assertEquals(2, e.code(), e.err());
        assertTrue(e.err().contains("--batch-size must be >= 1, found -3"), e.err());
    }

    @Test
    void reportOfAFolderThatIsNoRunSaysWhatToGive() throws Exception {
        Path empty = Files.createDirectories(tmp.resolve("not-a-run"));
        Cli.Result r = Cli.run("report", empty.toString());
        assertEquals(2, r.code(), r.err());
        assertEquals("error: " + empty.toAbsolutePath() + " is not a run folder (no config.yaml and run.json); give the"
                + " folder `finetune train` wrote\n", r.err());
    }

    @Test
    void reportOfARunWithoutACheckpointSaysHowToResume() throws Exception {
        Path run = Files.createDirectories(tmp.resolve("no-epoch-yet"));
        Files.writeString(run.resolve("config.yaml"), "name: x\n");
        Files.writeString(run.resolve("run.json"), "{}");
        Cli.Result r = Cli.run("report", run.toString());
        assertEquals(5, r.code(), r.err());
        assertTrue(r.err().contains("has no checkpoint yet (checkpoints/best.safetensors); the report needs at least one"
                + " finished epoch — resume the run with `finetune train --resume " + run.toAbsolutePath() + "`"),
                r.err());
    }

    @Test
    void badValueCarriesItsYamlPath() throws Exception {
        Path cfg = Cli.config(tmp, "lr", LINEAR_PROBE, ONE_EPOCH);
        Cli.Result r = Cli.run("inspect", "-c", cfg.toString(), "--set", "optimizer.lr=-1");
        assertEquals(3, r.code());
        assertEquals("error: optimizer.lr: must be > 0, found -1.0\n", r.err());
    }

    @Test
    void missingAndCorruptCheckpointsAreCheckpointErrors() throws Exception {
        Path cfg = Cli.config(tmp, "ck", LINEAR_PROBE, ONE_EPOCH);
        Cli.Result missing = Cli.run("inspect", "-c", cfg.toString(), "--set",
                "model.checkpoint=" + tmp.resolve("nope.pth"));
        assertEquals(5, missing.code());
        assertEquals("error: " + tmp.resolve("nope.pth") + ": no such file\n", missing.err());
        Path bad = tmp.resolve("bad.pth");
        Files.writeString(bad, "not a checkpoint");
        Cli.Result corrupt = Cli.run("checkpoint", "inspect", bad.toString());
        assertEquals(5, corrupt.code());
        assertTrue(corrupt.err().startsWith("error: " + bad + ": unknown checkpoint format"), corrupt.err());
        assertClean(corrupt);
    }

    @Test
    void experimentCheckpointResolvesOnlyInsideASweepAndOnlyToAnEarlierConfig() throws Exception {
        Path cfg = Cli.config(tmp, "ck", LINEAR_PROBE, ONE_EPOCH);
        Cli.Result outside = Cli.run("inspect", "-c", cfg.toString(), "--set", "model.checkpoint=experiment:pretrain");
        assertEquals(5, outside.code());
        assertEquals("error: experiment:pretrain: names the best checkpoint of experiment 'pretrain' in a `finetune"
                + " experiment` sweep, which resolves it; outside a sweep give that run's file, e.g."
                + " runs/experiments/pretrain/checkpoints/best.safetensors\n", outside.err());
        Path sweep = Files.createDirectories(tmp.resolve("sweep"));
        Files.writeString(sweep.resolve("a-finetune.yaml"), Files.readString(cfg)
                .replaceFirst("(?m)^name: .*$", "name: finetune")
                .replaceFirst("(?m)^  checkpoint: .*$", "  checkpoint: experiment:pretrain"));
        Files.writeString(sweep.resolve("b-pretrain.yaml"), Files.readString(cfg)
                .replaceFirst("(?m)^name: .*$", "name: pretrain"));
        Cli.Result order = Cli.run("experiment", sweep.toString(), "--out", tmp.resolve("out").toString());
        assertEquals(2, order.code());
        assertEquals("error: " + sweep.resolve("a-finetune.yaml") + ": model.checkpoint 'experiment:pretrain' names no"
                + " experiment that runs before it in " + sweep + " (configs run in file-name order: []); name the"
                + " config that trains it so that it sorts first (experiment:NAME takes its best checkpoint,"
                + " experiment:NAME:ema its weight EMA)\n", order.err());
        assertFalse(Files.exists(tmp.resolve("out")), "nothing runs when a reference is wrong");
        assertClean(order);

        // experiment:NAME:ema takes the upstream run's weight EMA, which its config must keep.
        Cli.Result emaOutside = Cli.run("inspect", "-c", cfg.toString(), "--set",
                "model.checkpoint=experiment:pretrain:ema");
        assertEquals(5, emaOutside.code());
        assertEquals("error: experiment:pretrain:ema: names the ema checkpoint of experiment 'pretrain' in a `finetune"
                + " experiment` sweep, which resolves it; outside a sweep give that run's file, e.g."
                + " runs/experiments/pretrain/checkpoints/ema.safetensors\n", emaOutside.err());
        Files.move(sweep.resolve("a-finetune.yaml"), sweep.resolve("c-finetune.yaml"));
        Files.writeString(sweep.resolve("c-finetune.yaml"), Files.readString(sweep.resolve("c-finetune.yaml"))
                .replace("experiment:pretrain", "experiment:pretrain:ema"));
        Cli.Result noEma = Cli.run("experiment", sweep.toString(), "--out", tmp.resolve("out").toString());
        assertEquals(2, noEma.code());
        assertEquals("error: " + sweep.resolve("c-finetune.yaml") + ": model.checkpoint 'experiment:pretrain:ema'"
                + " names the weight EMA of experiment 'pretrain', which keeps none; set train.ema in its config or use"
                + " experiment:pretrain (its best checkpoint)\n", noEma.err());
        assertFalse(Files.exists(tmp.resolve("out")), "nothing runs when a reference is wrong");
    }

    @Test
    void existingRunDirectoryIsNeverOverwritten() throws Exception {
        Path cfg = Cli.config(tmp, "exists", LINEAR_PROBE, ONE_EPOCH);
        Path run = tmp.resolve("run");
        Files.createDirectories(run);
        Files.writeString(run.resolve("precious.txt"), "keep me");
        Cli.Result r = Cli.run("train", "-c", cfg.toString(), "--run-dir", run.toString());
        assertEquals(7, r.code());
        assertEquals("error: run directory " + run + " already exists and holds files that are not a finetune"
                + " run's; choose another --run-dir\n", r.err());
        assertEquals("keep me", Files.readString(run.resolve("precious.txt")));
    }

    @Test
    void emptyClassFolderIsNamed() throws Exception {
        Path data = Cli.smallData(tmp.resolve("data"), 8, 2);
        Path empty = data.resolve("train/zebra");
        Files.createDirectories(empty);
        Path cfg = Cli.config(tmp, "empty", LINEAR_PROBE, ONE_EPOCH);
        Cli.Result r = Cli.run("train", "-c", cfg.toString(), "--run-dir", tmp.resolve("r").toString(), "--set",
                "data.root=" + data);
        assertEquals(4, r.code());
        assertTrue(r.err().contains(empty.toString()), r.err());
        assertTrue(r.err().contains("no images"), r.err());
        assertClean(r);
    }

    @Test
    void corruptImageFailsNamingTheFileOrIsSkippedAndCounted() throws Exception {
        Path data = Cli.smallData(tmp.resolve("data"), 8, 2);
        Path broken = data.resolve("train/bag/99999.png");
        Files.write(broken, new byte[] {(byte) 0x89, 'P', 'N', 'G', 1, 2, 3});
        Path cfg = Cli.config(tmp, "corrupt", LINEAR_PROBE, ONE_EPOCH);
        Cli.Result fail = Cli.run("train", "-c", cfg.toString(), "--run-dir", tmp.resolve("r1").toString(), "--set",
                "data.root=" + data, "--set", "train.feature_cache=false");
        assertEquals(4, fail.code(), fail.err());
        assertTrue(fail.err().contains(broken.toString()), fail.err());
        assertClean(fail);

        Cli.Result skip = Cli.run("train", "-c", cfg.toString(), "--run-dir", tmp.resolve("r2").toString(), "--set",
                "data.root=" + data, "--set", "data.on_bad_image=skip", "--set", "train.feature_cache=false");
        assertEquals(0, skip.code(), skip.err());
        var summary = new ObjectMapper().readTree(tmp.resolve("r2/summary.json").toFile());
        assertEquals(1, summary.get("skipped_images").size(), summary.toString());
        assertTrue(summary.get("skipped_images").fieldNames().next().contains("99999.png"));
    }

    @Test
    void divergenceStopsNamingTheStep() throws Exception {
        Path cfg = Cli.config(tmp, "nan", "{default: train}", "{epochs: 2, batch_size: 32}");
        Cli.Result r = Cli.run("train", "-c", cfg.toString(), "--run-dir", tmp.resolve("r").toString(), "--set",
                "optimizer.lr=1.0e12");
        assertEquals(6, r.code(), r.out() + r.err());
        assertTrue(r.err().startsWith("error: training diverged at epoch 1, batch "), r.err());
        assertTrue(r.err().contains("lower optimizer.lr"), r.err());
        assertClean(r);
    }

    @Test
    void usageErrorsExitWithTwo() {
        Cli.Result r = Cli.run("train", "--bogus");
        assertEquals(2, r.code());
        assertTrue(r.err().startsWith("error: "), r.err());
    }

    @Test
    void exitCodeTablesComeFromErrorKind() throws Exception {
        StringBuilder table = new StringBuilder("| code | meaning |\n|---:|---|\n| 0 | success |\n");
        for (dev.finetune.ErrorKind k : dev.finetune.ErrorKind.values()) {
            table.append("| ").append(k.exitCode()).append(" | ").append(k.meaning()).append(" |\n");
        }
        String readme = Files.readString(Cli.repo().resolve("README.md"));
        assertTrue(readme.contains(table), "the README's exit-code table is ErrorKind's:\n" + table);
        String help = Cli.run("--help").out().replaceAll("\\s+", " "); // picocli wraps long lines
        for (dev.finetune.ErrorKind k : dev.finetune.ErrorKind.values()) {
            assertTrue(help.contains(k.exitCode() + " " + k.meaning()), "--help lists " + k + ":\n" + help);
        }
    }
}
