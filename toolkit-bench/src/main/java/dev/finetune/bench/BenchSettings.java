package dev.finetune.bench;

import dev.finetune.ErrorKind;
import dev.finetune.FinetuneException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * What {@code finetune bench} measures and how. Immutable; build with {@link #builder()}.
 *
 * @param shapes input shapes, each run for every workload
 * @param workloads our workloads ({@link Workload#OURS} and/or {@link Workload#LOADER})
 * @param iters timed iterations per workload (the median is reported)
 * @param warmup untimed iterations first
 * @param threads intra-op threads of libtorch, on both sides
 * @param torch also run PyTorch's side and the TorchScript ceiling, and compare
 * @param isolate run every workload in a fresh child JVM (true for peak-RSS figures that mean something)
 * @param profile also time each stage of inference and of the folded backbone, and profile ops with libtorch's
 *     profiler (after the timed iterations, which never run under the profiler)
 * @param maxForeignLoad percent of the machine's CPU that other processes may use during a measurement: the run
 *     waits for an idle machine before each workload and repeats (up to 3 times) one that other processes
 *     disturbed more; 100 disables both
 * @param dataDir ImageFolder tree for the loader workload
 * @param python the interpreter with torch and torchvision (Debian's {@code /usr/bin/python3})
 * @param torchScript {@code scripts/bench/torch_bench.py}
 * @param rounds how many times the whole schedule runs; each round runs every one of our workloads next to its
 *     references (PyTorch's counterpart, the TorchScript graph), ours first in odd rounds and last in even ones, and
 *     the report gives medians over rounds with each ratio's range (host speed drifts over minutes: references measured
 *     far apart in time compare the host's moments as much as the code)
 */
public record BenchSettings(
        List<InputShape> shapes,
        List<Workload> workloads,
        int iters,
        int warmup,
        int threads,
        boolean torch,
        boolean isolate,
        boolean profile,
        double maxForeignLoad,
        Path dataDir,
        String python,
        Path torchScript,
        int rounds) {

    /** Checks the values. */
    public BenchSettings {
        shapes = List.copyOf(shapes);
        workloads = List.copyOf(workloads);
        for (Workload w : workloads) {
            if (!Workload.OURS.contains(w) && w != Workload.LOADER) {
                throw new FinetuneException(ErrorKind.USAGE, "workload " + w.configName() + " is not selectable; the"
                        + " TorchScript ceiling runs with --torch");
            }
        }
        if (shapes.isEmpty()) {
            throw new FinetuneException(ErrorKind.USAGE, "at least one input shape is needed");
        }
        if (iters < 1) {
            throw new FinetuneException(ErrorKind.USAGE, "iters must be >= 1, found " + iters);
        }
        if (warmup < 0) {
            throw new FinetuneException(ErrorKind.USAGE, "warmup must be >= 0, found " + warmup);
        }
        if (!(maxForeignLoad > 0 && maxForeignLoad <= 100)) {
            throw new FinetuneException(
                    ErrorKind.USAGE, "max foreign load must be in (0, 100] percent, found " + maxForeignLoad);
        }
        if (threads < 1) {
            throw new FinetuneException(ErrorKind.USAGE, "threads must be >= 1, found " + threads);
        }
        if (rounds < 1) {
            throw new FinetuneException(ErrorKind.USAGE, "rounds must be >= 1, found " + rounds);
        }
    }

    /** The image size the loader workload runs at: 224, the size the data-pipeline target is stated for. */
    public static final int LOADER_SIZE = 224;

    public static Builder builder() {
        return new Builder();
    }

    /** A builder starting from these settings. */
    public Builder toBuilder() {
        return new Builder()
                .shapes(shapes)
                .workloads(workloads)
                .iters(iters)
                .warmup(warmup)
                .threads(threads)
                .torch(torch)
                .isolate(isolate)
                .profile(profile)
                .maxForeignLoad(maxForeignLoad)
                .dataDir(dataDir)
                .python(python)
                .torchScript(torchScript)
                .rounds(rounds);
    }

    /** Builds {@link BenchSettings}; every setting has a default. */
    public static final class Builder {
        private List<InputShape> shapes = List.of(new InputShape(32, 224), new InputShape(128, 64));
        private List<Workload> workloads = defaultWorkloads();
        private int iters = 10;
        private int warmup = 3;
        private int threads = Runtime.getRuntime().availableProcessors();
        private boolean torch;
        private boolean isolate = true;
        private boolean profile;
        private double maxForeignLoad = 10;
        private Path dataDir = Path.of("data", "fashion-mnist-b", "train");
        private String python = "/usr/bin/python3";
        private Path torchScript = Path.of("scripts", "bench", "torch_bench.py");
        private int rounds = 1;

        private Builder() {}

        private static List<Workload> defaultWorkloads() {
            List<Workload> w = new ArrayList<>(Workload.OURS);
            w.add(Workload.LOADER);
            return w;
        }

        /** Default: 32x224 and 128x64. */
        public Builder shapes(List<InputShape> shapes) {
            this.shapes = shapes;
            return this;
        }

        /** Default: {@link Workload#OURS} and {@link Workload#LOADER}. */
        public Builder workloads(List<Workload> workloads) {
            this.workloads = workloads;
            return this;
        }

        /** Default 10. */
        public Builder iters(int iters) {
            this.iters = iters;
            return this;
        }

        /** Default 3. */
        public Builder warmup(int warmup) {
            this.warmup = warmup;
            return this;
        }

        /** Default: the number of available processors. */
        public Builder threads(int threads) {
            this.threads = threads;
            return this;
        }

        public Builder torch(boolean torch) {
            this.torch = torch;
            return this;
        }

        /** Default true. */
        public Builder isolate(boolean isolate) {
            this.isolate = isolate;
            return this;
        }

        public Builder profile(boolean profile) {
            this.profile = profile;
            return this;
        }

        /** Default 10 (percent of the machine); 100 disables waiting and repeating. */
        public Builder maxForeignLoad(double maxForeignLoad) {
            this.maxForeignLoad = maxForeignLoad;
            return this;
        }

        /** Default {@code data/fashion-mnist-b/train}. */
        public Builder dataDir(Path dataDir) {
            this.dataDir = dataDir;
            return this;
        }

        /** Default {@code /usr/bin/python3}. */
        public Builder python(String python) {
            this.python = python;
            return this;
        }

        /** Default {@code scripts/bench/torch_bench.py}. */
        public Builder torchScript(Path torchScript) {
            this.torchScript = torchScript;
            return this;
        }

        /** Default 1. */
        public Builder rounds(int rounds) {
            this.rounds = rounds;
            return this;
        }

        public BenchSettings build() {
            return new BenchSettings(
                    shapes, workloads, iters, warmup, threads, torch, isolate, profile, maxForeignLoad, dataDir, python,
                    torchScript, rounds);
        }
    }
}
