package dev.finetune.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.finetune.ErrorKind;
import dev.finetune.FinetuneException;
import dev.finetune.config.ConfigLoader;
import dev.finetune.run.RunSummary;
import dev.finetune.run.TrainJob;
import dev.finetune.train.StopSignal;
import dev.finetune.train.TrainContext;
import dev.finetune.train.TrainingListener;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code finetune experiment DIR --resume}: a sweep stopped in its second run (Ctrl-C reaches the child, which writes a
 * resumable checkpoint) continues there, keeps the finished first run untouched, and without --resume is refused
 * before anything runs, naming the command that continues it.
 */
class ExperimentResumeTest {
    @TempDir
    Path tmp;

    private static final String LINEAR_PROBE = "{default: freeze, rules: [{train: \"fc.*\"}]}";

    @Test
    void aStoppedSweepContinuesWhereItStopped() throws Exception {
        Path data = Cli.smallData(tmp.resolve("data"), 8, 2);
        Path sweep = Files.createDirectories(tmp.resolve("sweep"));
        Path a = Cli.config(sweep, "a", LINEAR_PROBE, "{epochs: 1, batch_size: 16}", data);
        Path b = Cli.config(sweep, "b", LINEAR_PROBE, "{epochs: 3, batch_size: 16, seed: 3}", data);
        Path out = tmp.resolve("out");
        // What a sweep leaves when it is stopped in b's second epoch: a finished, b with a mid-epoch checkpoint.
        TrainJob.start(ConfigLoader.load(a, List.of()), out.resolve("a"), List.of());
        TrainingListener stopper = new TrainingListener() {
            @Override
            public void onStep(TrainContext ctx, int batch, int images, float loss, double lr) {
                if (ctx.state().epochsCompleted() == 1 && batch == 1) {
                    StopSignal.request(ErrorKind.INTERRUPTED);
                }
            }
        };
        try {
            assertEquals(ErrorKind.INTERRUPTED, assertThrows(FinetuneException.class,
                    () -> TrainJob.start(ConfigLoader.load(b, List.of()), out.resolve("b"), List.of(stopper))).kind());
        } finally {
            StopSignal.clear();
        }
        byte[] aCheckpoint = Files.readAllBytes(out.resolve("a/checkpoints/last.safetensors"));

        Cli.Result refused = Cli.run("experiment", sweep.toString(), "--out", out.toString());
        assertEquals(2, refused.code(), refused.err());
        assertEquals("error: " + out.resolve("a") + " already holds a finished run of " + a + "; continue the sweep"
                + " with: finetune experiment " + sweep + " --out " + out + " --resume (finished runs are kept,"
                + " interrupted ones continue), or give another --out\n", refused.err());

        Cli.Result resumed = Cli.run("experiment", sweep.toString(), "--out", out.toString(), "--resume");
        assertEquals(0, resumed.code(), resumed.err());
        assertTrue(resumed.out().contains("== a (" + a + "): finished before, kept (" + out.resolve("a") + ")"),
                resumed.out());
        assertTrue(resumed.out().contains("== b (" + b + "): continuing " + out.resolve("b")), resumed.out());
        assertArrayEquals(aCheckpoint, Files.readAllBytes(out.resolve("a/checkpoints/last.safetensors")),
                "the finished run is not run again");
        RunSummary sb = RunSummary.read(out.resolve("b"));
        assertEquals(3, sb.epochsCompleted());
        assertEquals(2, sb.segments(), "b continued from its checkpoint instead of starting again");
        String table = Files.readString(out.resolve("results.md"));
        assertTrue(table.contains("| a | ") && table.contains("| b | "), table);

        // Now every run is finished: --resume keeps them all and runs nothing.
        Cli.Result again = Cli.run("experiment", sweep.toString(), "--out", out.toString(), "--resume");
        assertEquals(0, again.code(), again.err());
        assertTrue(again.out().contains("== b (" + b + "): finished before, kept"), again.out());
    }
}
