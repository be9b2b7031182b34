package dev.finetune.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.finetune.ErrorKind;
import dev.finetune.FinetuneException;
import dev.finetune.run.RunDirectory;
import dev.finetune.run.TrainJob;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A failed {@code train} never leaves a folder that blocks the next try: what a user can get wrong is checked before
 * the folder exists; a run that failed before its first checkpoint is reused by a new {@code train} or restarted by
 * {@code --resume}; orphan temporary files go; two runs never share a folder.
 */
class RunFolderLifecycleTest {
    private static final String LINEAR_PROBE = "{default: freeze, rules: [{train: \"fc.*\"}]}";
    private static final String ONE_EPOCH = "{epochs: 1, batch_size: 16}";

    @TempDir
    Path tmp;

    private Path data;

    @BeforeEach
    void smallData() throws Exception {
        data = Cli.smallData(tmp.resolve("data"), 8, 2);
    }

    @Test
    void configDataAndCheckpointErrorsCreateNothing() throws Exception {
        Path cfg = Cli.config(tmp, "c", LINEAR_PROBE, ONE_EPOCH, data);
        Path run = tmp.resolve("run");
        Cli.Result badValue = Cli.run("train", "-c", cfg.toString(), "--run-dir", run.toString(), "--set",
                "optimizer.momentum=-3");
        assertEquals(3, badValue.code(), badValue.err());
        Cli.Result noData = Cli.run("train", "-c", cfg.toString(), "--run-dir", run.toString(), "--set",
                "data.root=" + tmp.resolve("nowhere"));
        assertEquals(4, noData.code(), noData.err());
        Files.createDirectories(data.resolve("train/zebra"));
        Cli.Result emptyClass = Cli.run("train", "-c", cfg.toString(), "--run-dir", run.toString());
        assertEquals(4, emptyClass.code(), emptyClass.err());
        Files.delete(data.resolve("train/zebra"));
        Cli.Result badCheckpoint = Cli.run("train", "-c", cfg.toString(), "--run-dir", run.toString(), "--set",
                "model.checkpoint=" + tmp.resolve("missing.pth"));
        assertEquals(5, badCheckpoint.code(), badCheckpoint.err());
        assertFalse(Files.exists(run), "no folder after errors found before training");
        Cli.Result ok = Cli.run("train", "-c", cfg.toString(), "--run-dir", run.toString(), "--quiet");
        assertEquals(0, ok.code(), ok.err());
    }

    @Test
    void aRunThatFailedBeforeItsFirstCheckpointIsReusedOrRestarted() throws Exception {
        Path broken = data.resolve("train/bag/99999.png");
        Files.write(broken, new byte[] {(byte) 0x89, 'P', 'N', 'G', 1, 2, 3});
        Path cfg = Cli.config(tmp, "late", LINEAR_PROBE, ONE_EPOCH, data);
        Path run = tmp.resolve("run");
        Cli.Result fail = Cli.run("train", "-c", cfg.toString(), "--run-dir", run.toString(), "--set",
                "train.feature_cache=false");
        assertEquals(4, fail.code(), fail.err());
        assertTrue(Files.isDirectory(run) && !Files.exists(run.resolve("checkpoints/last.safetensors")));
        Files.writeString(run.resolve("checkpoints/.last.safetensors.1234.tmp"), "half a write");

        Files.delete(broken);
        Cli.Result resumed = Cli.run("train", "--resume", run.toString(), "--quiet");
        assertEquals(0, resumed.code(), resumed.err());
        assertTrue(resumed.out().contains("epoch 1:"), "restarted from the beginning: " + resumed.out());
        assertTrue(Files.exists(run.resolve("checkpoints/last.safetensors")));
        assertFalse(Files.exists(run.resolve("checkpoints/.last.safetensors.1234.tmp")), "orphan removed");

        Path run2 = tmp.resolve("run2");
        Files.write(broken, new byte[] {(byte) 0x89, 'P', 'N', 'G', 1, 2, 3});
        assertEquals(4, Cli.run("train", "-c", cfg.toString(), "--run-dir", run2.toString(), "--set",
                "train.feature_cache=false").code());
        Files.delete(broken);
        Cli.Result again = Cli.run("train", "-c", cfg.toString(), "--run-dir", run2.toString(), "--quiet");
        assertEquals(0, again.code(), "the same --run-dir is reused: " + again.err());
        Cli.Result third = Cli.run("train", "-c", cfg.toString(), "--run-dir", run2.toString(), "--quiet");
        assertEquals(7, third.code(), "a folder with a checkpoint is never reused");
        assertTrue(third.err().contains("already holds a run"), third.err());
    }

    @Test
    void divergenceBeforeAnyCheckpointSaysSoAndTheFolderIsReused() throws Exception {
        Path cfg = Cli.config(tmp, "nan", "{default: train}", ONE_EPOCH, data);
        Path run = tmp.resolve("run");
        Cli.Result r = Cli.run("train", "-c", cfg.toString(), "--run-dir", run.toString(), "--set",
                "optimizer.lr=1.0e12");
        assertEquals(6, r.code(), r.err());
        assertTrue(r.err().contains("No checkpoint was written yet; run again with the fix, the run directory " + run
                + " is reused"), r.err());
        assertFalse(r.err().contains("last good checkpoint"), r.err());
        Cli.Result fixed = Cli.run("train", "-c", cfg.toString(), "--run-dir", run.toString(), "--quiet");
        assertEquals(0, fixed.code(), fixed.err());
    }

    @Test
    void twoRunsNeverShareAFolder() throws Exception {
        Path cfg = Cli.config(tmp, "lock", LINEAR_PROBE, ONE_EPOCH, data);
        Path run = tmp.resolve("run");
        assertEquals(0, Cli.run("train", "-c", cfg.toString(), "--run-dir", run.toString(), "--quiet").code());
        try (RunDirectory held = RunDirectory.existing(run)) {
            FinetuneException e = assertThrows(FinetuneException.class,
                    () -> TrainJob.resume(run, List.of("train.epochs=2"), List.of()));
            assertEquals(ErrorKind.OUTPUT, e.kind());
            assertTrue(e.getMessage().contains("is in use by another finetune run"), e.getMessage());
        }
        String summary = Files.readString(run.resolve("summary.json"));
        Cli.Result finished = Cli.run("train", "--resume", run.toString());
        assertEquals(7, finished.code(), "nothing left to train: " + finished.err());
        assertTrue(finished.err().contains("already finished: it has trained 1 epochs and train.epochs is 1")
                && finished.err().contains("--set train.epochs=N (N > 1)"), finished.err());
        assertEquals(summary, Files.readString(run.resolve("summary.json")), "the finished run's summary is kept");
        Cli.Result after = Cli.run("train", "--resume", run.toString(), "--set", "train.epochs=2", "--quiet");
        assertEquals(0, after.code(), "free again once the other run ends: " + after.err());
    }

    @Test
    void aRunEndedByEarlyStoppingIsNotResumedIntoAnEmptySegment() throws Exception {
        // No change of val_loss counts as an improvement of 1000: the second epoch stops the run.
        Path cfg = Cli.config(tmp, "early", LINEAR_PROBE, "{epochs: 4, batch_size: 16, early_stopping: {metric:"
                + " val_loss, patience: 1, min_delta: 1000}}", data);
        Path run = tmp.resolve("run");
        Cli.Result r = Cli.run("train", "-c", cfg.toString(), "--run-dir", run.toString(), "--quiet");
        assertEquals(0, r.code(), r.err());
        String summary = Files.readString(run.resolve("summary.json"));
        assertTrue(summary.contains("early stopping"), summary);
        Cli.Result again = Cli.run("train", "--resume", run.toString(), "--set", "train.epochs=6");
        assertEquals(7, again.code(), again.err());
        assertTrue(again.err().contains("early stopping ended it after epoch 2")
                && again.err().contains("--set train.early_stopping.patience=N (N > 1)"), again.err());
        assertEquals(summary, Files.readString(run.resolve("summary.json")));
    }

    @Test
    void aUsersOwnFolderIsNeverTakenForARun() throws Exception {
        Path cfg = Cli.config(tmp, "own", LINEAR_PROBE, ONE_EPOCH, data);
        Path mine = Files.createDirectories(tmp.resolve("mine"));
        Files.writeString(mine.resolve("config.yaml"), "my own notes");
        Cli.Result r = Cli.run("train", "-c", cfg.toString(), "--run-dir", mine.toString());
        assertEquals(7, r.code());
        assertEquals("my own notes", Files.readString(mine.resolve("config.yaml")));
        assertEquals(2, Cli.run("train", "--resume", mine.toString()).code(), "nothing to resume there");
    }
}
