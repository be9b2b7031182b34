package dev.finetune.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.finetune.ErrorKind;
import dev.finetune.FinetuneException;
import dev.finetune.checkpoint.HostTensor;
import dev.finetune.config.ConfigLoader;
import dev.finetune.run.TrainJob;
import dev.finetune.run.TrainingCheckpoint;
import dev.finetune.train.StopSignal;
import dev.finetune.train.TrainContext;
import dev.finetune.train.TrainingListener;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Nothing is lost: a run stopped mid-epoch and resumed ends with the weights of an uninterrupted one; Ctrl-C on a
 * real process writes a resumable checkpoint and exits 130; a process killed with SIGKILL resumes from its last
 * checkpoint, which with train.recovery_interval can be mid-epoch.
 */
class InterruptResumeTest {
    @TempDir
    static Path tmp;

    /** The three signalled processes, started together (each is mostly JVM and engine start-up). */
    private static Signalled sigint;
    private static Signalled sigterm;
    private static Signalled sigkill;

    /** A real {@code finetune train} process that gets {@code signal} once {@code after} appears in its output. */
    private record Signalled(Path run, Path log, Process process, java.util.concurrent.Future<Integer> exit) {}

    @BeforeAll
    static void startSignalledProcesses() throws Exception {
        java.util.concurrent.ExecutorService pool = java.util.concurrent.Executors.newFixedThreadPool(3);
        sigint = sigintIgnored() ? null : start(pool, "sigint", 1, "epoch 1:", "INT");
        sigterm = start(pool, "sigterm", 4, "epoch 1:", "TERM");
        sigkill = start(pool, "sigkill", 2, "epoch 2:", "KILL");
        pool.shutdown();
    }

    private static Signalled start(java.util.concurrent.ExecutorService pool, String name, int seed, String after,
            String signal) throws Exception {
        Path cfg = config(name, "{epochs: 50, batch_size: 16, seed: " + seed + "}");
        Path run = tmp.resolve("run-" + name);
        Path log = tmp.resolve(name + ".log");
        Process p = Cli.start(log, "train", "-c", cfg.toString(), "--run-dir", run.toString(), "--quiet");
        return new Signalled(run, log, p, pool.submit(() -> {
            Cli.awaitText(log, after, 180);
            if (signal.equals("KILL")) {
                Thread.sleep(300);
            }
            Cli.signal(p, signal);
            if (!p.waitFor(120, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new AssertionError(name + ": the process did not stop after SIG" + signal);
            }
            return p.exitValue();
        }));
    }

    /** layer4 + fc train (BN statistics update there), random crops and flips, dropout: every RNG is exercised. */
    private static final String LAST_STAGE = "{default: freeze, rules: [{train: [layer4, fc]}]}";

    private static synchronized Path config(String name, String train) throws Exception {
        // 16 training and 4 validation images per class: the same kind of run as the quickstart's, five times faster.
        Path data = tmp.resolve("data");
        if (!Files.exists(data)) {
            Cli.smallData(data, 16, 4);
        }
        Path cfg = Cli.config(tmp, name, LAST_STAGE, train, data);
        String yaml = Files.readString(cfg).replace("augment: false", "augment: true")
                .replace("head: {classes: auto}", "head: {classes: auto, dropout: 0.3}");
        Files.writeString(cfg, yaml);
        return cfg;
    }

    private static TrainJob.Result full;

    /** 3 epochs of 4 steps, a cosine schedule with warm-up and an unfreeze at epoch 2, run once uninterrupted. */
    private static synchronized Path resumeConfig() throws Exception {
        Path cfg = config("resume", "{epochs: 3, batch_size: 16, seed: 5, max_steps_per_epoch: 4,"
                + " schedule: {name: cosine, warmup_epochs: 1}, unfreeze: [{at_epoch: 2, match: layer3}]}");
        if (full == null) {
            full = TrainJob.start(ConfigLoader.load(cfg, List.of()), tmp.resolve("full"), List.of());
            assertEquals(3, full.state().epochsCompleted());
        }
        return cfg;
    }

    @Test
    void resumedMidEpochEndsWithTheSameWeights() throws Exception {
        ConfigLoader.Loaded loaded = ConfigLoader.load(resumeConfig(), List.of());

        TrainingListener stopper = new TrainingListener() {
            @Override
            public void onStep(TrainContext ctx, int batch, int images, float loss, double lr) {
                if (ctx.state().epochsCompleted() == 1 && batch == 2) {
                    StopSignal.request(ErrorKind.INTERRUPTED);
                }
            }
        };
        Path cut = tmp.resolve("cut");
        FinetuneException e = assertThrows(FinetuneException.class,
                () -> TrainJob.start(loaded, cut, List.of(stopper)));
        StopSignal.clear();
        assertEquals(ErrorKind.INTERRUPTED, e.kind());
        TrainingCheckpoint.Loaded mid = TrainingCheckpoint.read(cut.resolve("checkpoints/last.safetensors"));
        assertEquals(1, mid.meta().state().epochsCompleted());
        assertEquals(2, mid.meta().state().batchesIntoEpoch());
        assertEquals(6, mid.meta().state().globalStep());
        assertEquals(1, full.summary().segments());
        assertEquals(1, mid.meta().runTime().segments(), "the interrupted process's time travels in the checkpoint");
        assertTrue(mid.meta().runTime().seconds() > 0);

        long r0 = System.nanoTime();
        TrainJob.Result resumed = TrainJob.resume(cut, List.of(), List.of());
        double resumeSeconds = (System.nanoTime() - r0) / 1e9;
        assertEquals(2, resumed.summary().segments(), "the stopped and the resumed process are one run");
        double second = resumed.summary().wallSeconds() - mid.meta().runTime().seconds();
        assertTrue(second > 0 && second <= resumeSeconds, "the summary's wall time is the first segment's "
                + mid.meta().runTime().seconds() + " s plus the resumed one's (at most " + resumeSeconds + " s): "
                + resumed.summary().wallSeconds());
        assertTrue(resumed.summary().peakRssBytes() >= mid.meta().runTime().peakRssBytes());
        assertEquals(3, resumed.state().epochsCompleted());
        assertEquals(full.state().globalStep(), resumed.state().globalStep());
        assertEquals(1, resumed.state().unfreezeApplied(), "the unfreeze position survives the resume");
        assertSameWeightsAsTheFullRun(cut);
        List<String> metrics = Files.readAllLines(cut.resolve("metrics.csv"));
        assertEquals(4, metrics.size(), "header + 3 epochs, none logged twice: " + metrics);
    }

    /**
     * train.recovery_interval: a process that dies without warning (no signal handler runs: here an error thrown by a
     * listener) mid-epoch resumes from the last recovery point, not the epoch's start, and ends as the uninterrupted
     * run did.
     */
    @Test
    void recoveryPointMidEpochSurvivesACrashAndResumesExactly() throws Exception {
        ConfigLoader.Loaded loaded = ConfigLoader.load(resumeConfig(), List.of("train.recovery_interval=3"));
        List<String> saved = new java.util.ArrayList<>();
        TrainingListener crash = new TrainingListener() {
            @Override
            public void onRecoveryPoint(TrainContext ctx, dev.finetune.train.TrainState at) {
                saved.add(at.epochsCompleted() + ":" + at.batchesIntoEpoch() + ":" + at.globalStep());
            }

            @Override
            public void onStep(TrainContext ctx, int batch, int images, float loss, double lr) {
                if (ctx.state().epochsCompleted() == 1 && batch == 4) {
                    throw new IllegalStateException("simulated crash");
                }
            }
        };
        Path cut = tmp.resolve("crashed");
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> TrainJob.start(loaded, cut, List.of(crash)));
        assertEquals("simulated crash", e.getMessage());
        // Steps 3 of epochs 1 and 2; none after an epoch's last (4th) batch.
        assertEquals(List.of("0:3:3", "1:3:7"), saved);
        TrainingCheckpoint.Loaded mid = TrainingCheckpoint.read(cut.resolve("checkpoints/last.safetensors"));
        assertEquals(1, mid.meta().state().epochsCompleted());
        assertEquals(3, mid.meta().state().batchesIntoEpoch());
        assertEquals(7, mid.meta().state().globalStep());

        TrainJob.Result resumed = TrainJob.resume(cut, List.of(), List.of());
        assertEquals(3, resumed.state().epochsCompleted());
        assertEquals(full.state().globalStep(), resumed.state().globalStep());
        assertSameWeightsAsTheFullRun(cut);
        List<String> metrics = Files.readAllLines(cut.resolve("metrics.csv"));
        assertEquals(4, metrics.size(), "header + 3 epochs, none logged twice: " + metrics);
    }

    private static void assertSameWeightsAsTheFullRun(Path run) throws Exception {
        Map<String, HostTensor> a = TrainingCheckpoint.read(tmp.resolve("full/checkpoints/last.safetensors"))
                .checkpoint().tensors();
        Map<String, HostTensor> b = TrainingCheckpoint.read(run.resolve("checkpoints/last.safetensors"))
                .checkpoint().tensors();
        assertEquals(a.keySet(), b.keySet());
        double worst = 0;
        String where = "";
        for (String k : a.keySet()) {
            float[] x = a.get(k).data();
            float[] y = b.get(k).data();
            for (int i = 0; i < x.length; i++) {
                double d = Math.abs(x[i] - y[i]);
                if (d > worst) {
                    worst = d;
                    where = k;
                }
            }
        }
        assertTrue(worst < 1e-5, "resumed weights differ from the uninterrupted run by " + worst + " at " + where);
    }

    /**
     * Whether this process ignores SIGINT, as every process started from a background job of a shell without job
     * control does (and nohup's): the child JVM then ignores Ctrl-C too, and trains to the end (seen once: exit 0).
     */
    private static boolean sigintIgnored() throws java.io.IOException {
        Path status = Path.of("/proc/self/status");
        if (!Files.isReadable(status)) {
            return false;
        }
        for (String line : Files.readAllLines(status)) {
            if (line.startsWith("SigIgn:")) {
                return (Long.parseUnsignedLong(line.substring("SigIgn:".length()).trim(), 16) & 0x2L) != 0;
            }
        }
        return false;
    }

    @Test
    void ctrlCOnARealProcessWritesAResumableCheckpointAndExits130() throws Exception {
        org.junit.jupiter.api.Assumptions.assumeTrue(sigint != null, "SIGINT is ignored in this environment (a"
                + " background job without job control, or nohup): no process started from here can receive Ctrl-C;"
                + " run the tests in the foreground");
        int code = sigint.exit().get(200, TimeUnit.SECONDS);
        String out = Files.readString(sigint.log());
        Path run = sigint.run();
        assertEquals(130, code, out);
        assertTrue(out.contains("a resumable checkpoint is in"), out);
        assertTrue(out.contains("finetune train --resume " + run), out);
        TrainingCheckpoint.Loaded last = TrainingCheckpoint.read(run.resolve("checkpoints/last.safetensors"));
        assertTrue(last.meta().state().globalStep() > 0);

        Cli.Result resumed = Cli.run("train", "--resume", run.toString(), "--set", "train.epochs=3", "--quiet");
        assertEquals(0, resumed.code(), resumed.err());
        assertTrue(resumed.out().contains("epoch 3:"), resumed.out());
    }

    @Test
    void sigtermWritesAResumableCheckpointAndExits143() throws Exception {
        int code = sigterm.exit().get(200, TimeUnit.SECONDS);
        String out = Files.readString(sigterm.log());
        assertEquals(143, code, out);
        assertTrue(out.contains("error: terminated in epoch "), out);
        assertTrue(TrainingCheckpoint.read(sigterm.run().resolve("checkpoints/last.safetensors")).meta().state()
                .globalStep() > 0);
    }

    @Test
    void sigkillMidEpochThenResumeFromTheLastCheckpoint() throws Exception {
        int code = sigkill.exit().get(200, TimeUnit.SECONDS);
        assertEquals(137, code);
        Path run = sigkill.run();
        TrainingCheckpoint.Loaded last = TrainingCheckpoint.read(run.resolve("checkpoints/last.safetensors"));
        int done = last.meta().state().epochsCompleted();
        assertTrue(done >= 2, "the checkpoint of a completed epoch survives a SIGKILL, found " + done);
        Cli.Result resumed = Cli.run("train", "--resume", run.toString(), "--set", "train.epochs=" + (done + 1),
                "--quiet");
        assertEquals(0, resumed.code(), resumed.err());
        assertTrue(resumed.out().contains("resuming after epoch " + done), resumed.out());
        assertTrue(resumed.out().contains("epoch " + (done + 1) + ":"), resumed.out());
        assertTrue(resumed.out().contains("edited for the rest of the run: train.epochs=" + (done + 1)),
                resumed.out());
        assertEquals(done + 1, ConfigLoader.load(run.resolve("config.yaml"), List.of()).config().train().epochs(),
                "--set on a resume lasts: the run's config.yaml keeps it");
    }
}
