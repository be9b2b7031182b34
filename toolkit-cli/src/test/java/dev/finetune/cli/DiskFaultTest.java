package dev.finetune.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.finetune.run.TrainingCheckpoint;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Real file-system faults: a run directory on a nearly full disk (a small tmpfs) and an immutable run directory.
 * Both need root (CI runs as root); without it they are skipped with the reason.
 */
class DiskFaultTest {
    @TempDir
    Path tmp;

    private Path mounted;
    private Path immutable;

    private static int sh(String... cmd) throws Exception {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        p.getInputStream().readAllBytes();
        p.waitFor(30, TimeUnit.SECONDS);
        return p.exitValue();
    }

    @AfterEach
    void cleanUp() throws Exception {
        if (mounted != null) {
            sh("umount", mounted.toString());
        }
        if (immutable != null) {
            sh("chattr", "-i", immutable.toString());
        }
    }

    @Test
    void fullDiskStopsWithAnOutputErrorAndKeepsThePreviousCheckpoints() throws Exception {
        Path disk = tmp.resolve("disk");
        Files.createDirectories(disk);
        // best (45 MB) + last (45 MB) fit once; the second epoch's writes do not.
        Assumptions.assumeTrue(sh("mount", "-t", "tmpfs", "-o", "size=100m", "tmpfs", disk.toString()) == 0,
                "needs root to mount a small tmpfs");
        mounted = disk;
        Path cfg = Cli.config(tmp, "full", "{default: freeze, rules: [{train: \"fc.*\"}]}",
                "{epochs: 4, batch_size: 32, seed: 0}");
        Path run = disk.resolve("run");
        Cli.Result r = Cli.run("train", "-c", cfg.toString(), "--run-dir", run.toString(), "--quiet");
        assertEquals(7, r.code(), r.out() + r.err());
        assertTrue(r.err().startsWith("error: cannot write " + run.resolve("checkpoints")), r.err());
        assertTrue(r.err().contains("No space left on device"), r.err());
        TrainingCheckpoint.Loaded last = TrainingCheckpoint.read(run.resolve("checkpoints/last.safetensors"));
        assertTrue(last.meta().state().epochsCompleted() >= 1, "the previous checkpoint is intact and readable");
        try (Stream<Path> s = Files.list(run.resolve("checkpoints"))) {
            assertFalse(s.anyMatch(f -> f.getFileName().toString().endsWith(".tmp")), "no temp file left");
        }
        Cli.Result resume = Cli.run("train", "--resume", run.toString(), "--set", "train.epochs="
                + last.meta().state().epochsCompleted(), "--quiet");
        assertEquals(0, resume.code(), "a run whose epochs are all done resumes to the end: " + resume.err());
    }

    @Test
    void readOnlyRunDirectoryIsAnOutputError() throws Exception {
        Path run = tmp.resolve("ro");
        Files.createDirectories(run);
        Assumptions.assumeTrue(sh("chattr", "+i", run.toString()) == 0, "needs root and chattr");
        immutable = run;
        Path cfg = Cli.config(tmp, "ro", "{default: freeze, rules: [{train: \"fc.*\"}]}", "{epochs: 1}");
        Cli.Result r = Cli.run("train", "-c", cfg.toString(), "--run-dir", run.toString(), "--quiet");
        assertEquals(7, r.code(), r.err());
        assertTrue(r.err().startsWith("error: run directory " + run + " cannot be locked"), r.err());
        assertTrue(r.err().contains("choose a writable --run-dir"), r.err());
    }
}
