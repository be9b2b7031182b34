package dev.finetune.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.finetune.run.RunSummary;
import dev.finetune.run.TrainingCheckpoint;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code finetune experiment DIR --resume}: a sweep whose process gets SIGTERM in its second run forwards the stop to
 * that run (which writes a resumable checkpoint; no orphan keeps training), exits 143 naming the command that
 * continues it, refuses to start over without --resume, and with it keeps the finished first run untouched and
 * continues the second from its checkpoint.
 */
class ExperimentResumeTest {
    @TempDir
    Path tmp;

    private static final String LINEAR_PROBE = "{default: freeze, rules: [{train: \"fc.*\"}]}";

    @Test
    void aSweepStoppedBySigtermContinuesWhereItStopped() throws Exception {
        Path data = Cli.smallData(tmp.resolve("data"), 8, 2);
        Path sweep = Files.createDirectories(tmp.resolve("sweep"));
        Path a = Cli.config(sweep, "a", LINEAR_PROBE, "{epochs: 1, batch_size: 16}", data);
        Path b = Cli.config(sweep, "b", LINEAR_PROBE, "{epochs: 500, batch_size: 16, seed: 3}", data);
        Path out = tmp.resolve("out");
        Path log = tmp.resolve("sweep.log");
        Process p = Cli.start(log, "experiment", sweep.toString(), "--out", out.toString());
        // a has one epoch: an "epoch 2:" line is b's, which is then under way. SIGTERM to the sweep's process only.
        Cli.awaitText(log, "epoch 2:", 180);
        Cli.signal(p, "TERM");
        if (!p.waitFor(120, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new AssertionError("the sweep did not stop after SIGTERM: " + Files.readString(log));
        }
        String text = Files.readString(log);
        assertEquals(143, p.exitValue(), text);
        String again = "finetune experiment " + sweep + " --out " + out + " --resume";
        assertTrue(text.contains("error: experiment b stopped (exit code 143) with a resumable checkpoint in "
                + out.resolve("b") + "; continue the sweep with: " + again), text);
        int done = TrainingCheckpoint.read(out.resolve("b/checkpoints/last.safetensors")).meta().state()
                .epochsCompleted();
        assertTrue(done >= 1 && done < 500, "b stopped in its run: " + done);
        byte[] aCheckpoint = Files.readAllBytes(out.resolve("a/checkpoints/last.safetensors"));

        Cli.Result refused = Cli.run("experiment", sweep.toString(), "--out", out.toString());
        assertEquals(2, refused.code(), refused.err());
        assertEquals("error: " + out.resolve("a") + " already holds a finished run of " + a + "; continue the sweep"
                + " with: " + again + " (finished runs are kept, interrupted ones continue), or give another --out\n",
                refused.err());

        // b's run continues to one more epoch than it had (the edit lasts in its config.yaml).
        Cli.Result resumed = Cli.run("experiment", sweep.toString(), "--out", out.toString(), "--resume", "--set",
                "train.epochs=" + (done + 1));
        assertEquals(0, resumed.code(), resumed.err());
        assertTrue(resumed.out().contains("== a (" + a + "): finished before, kept (" + out.resolve("a") + ")"),
                resumed.out());
        assertTrue(resumed.out().contains("== b (" + b + "): continuing " + out.resolve("b")), resumed.out());
        assertArrayEquals(aCheckpoint, Files.readAllBytes(out.resolve("a/checkpoints/last.safetensors")),
                "the finished run is not run again");
        RunSummary sb = RunSummary.read(out.resolve("b"));
        assertEquals(done + 1, sb.epochsCompleted());
        assertEquals(2, sb.segments(), "b continued from its checkpoint instead of starting again");
        String table = Files.readString(out.resolve("results.md"));
        assertTrue(table.contains("| a | ") && table.contains("| b | "), table);

        // Every run is finished now: --resume keeps them all and runs nothing.
        Cli.Result kept = Cli.run("experiment", sweep.toString(), "--out", out.toString(), "--resume");
        assertEquals(0, kept.code(), kept.err());
        assertTrue(kept.out().contains("== b (" + b + "): finished before, kept"), kept.out());
    }
}
