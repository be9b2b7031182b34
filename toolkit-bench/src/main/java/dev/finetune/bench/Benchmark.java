package dev.finetune.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.finetune.FinetuneException;
import dev.finetune.engine.Engines;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import java.util.stream.Stream;

/**
 * {@code finetune bench}: images/s, achieved GFLOP/s and peak RSS of our ResNet-18 workloads, optionally beside
 * PyTorch's and the same network as one TorchScript graph on our libtorch, and the data loader's throughput.
 *
 * <pre>{@code
 * BenchReport report = Benchmark.run(BenchSettings.builder().torch(true).build(), System.err::println);
 * System.out.print(report.toText());
 * }</pre>
 *
 * <p>Each workload at each shape runs in a fresh child JVM started by {@link #main} in its hidden {@code --one} mode
 * (see {@link ChildJvm}); PyTorch's script does the same with subprocesses.
 */
public final class Benchmark {
    private Benchmark() {}

    /** Runs everything {@code settings} asks for; {@code progress} receives one line per finished measurement. */
    public static BenchReport run(BenchSettings settings, Consumer<String> progress) {
        String date = ZonedDateTime.now().format(DateTimeFormatter.ISO_OFFSET_DATE_TIME);
        MachineInfo machine = MachineInfo.current();
        List<String> notes = new ArrayList<>();
        List<Measurement> ours = new ArrayList<>();
        for (InputShape shape : settings.shapes()) {
            for (Workload w : settings.workloads()) {
                String bf16Missing = w.bf16() ? dev.finetune.model.Precision.BF16.whyUnavailable() : null;
                if (bf16Missing != null) {
                    String note = w.configName() + " not measured: " + bf16Missing;
                    if (!notes.contains(note)) {
                        notes.add(note);
                    }
                } else if (w != Workload.LOADER) {
                    ours.add(measure(w, shape, settings, null, progress));
                }
            }
        }
        if (settings.workloads().contains(Workload.LOADER)) {
            if (settings.dataDir() != null && Files.isDirectory(settings.dataDir())) {
                ours.add(measure(Workload.LOADER, loaderShape(settings), settings, null, progress));
            } else {
                notes.add("loader not measured: no image folder at " + settings.dataDir());
            }
        }
        String torchVersion = null;
        List<Measurement> torch = List.of();
        if (settings.torch()) {
            TorchSide side = new TorchSide(settings);
            Path dir = null;
            try {
                dir = Files.createTempDirectory("finetune-bench-ts-");
                side.trace(dir);
                for (InputShape shape : settings.shapes()) {
                    for (Workload w : Workload.TORCHSCRIPT) {
                        Measurement m = measure(w, shape, settings, dir, progress);
                        ours.add(m);
                        if (m.error() != null && !notes.contains(tsNote(m.error()))) {
                            notes.add(tsNote(m.error()));
                        }
                    }
                }
            } catch (IOException | FinetuneException e) {
                notes.add("TorchScript ceiling not measured: " + e.getMessage());
            } finally {
                deleteTree(dir);
            }
            progress.accept("running PyTorch's side (" + settings.python() + " " + settings.torchScript() + ")");
            try {
                TorchSide.Results results = side.run(progress);
                torchVersion = results.torchVersion();
                torch = new ArrayList<>(results.measurements());
                if (underInferencePolicy(settings)) {
                    progress.accept("running PyTorch's inference again under evaluate's and predict's malloc"
                            + " settings");
                    torch.addAll(side.runInferenceUnderOurPolicy(progress).measurements());
                }
                Map<String, String> allocator = Allocator.preloadedByLauncher(System.getenv());
                if (!allocator.isEmpty()) {
                    progress.accept("running PyTorch's side again with our allocator (" + allocator.get("LD_PRELOAD")
                            + ")");
                    torch.addAll(side.runUnderOurAllocator(progress, allocator).measurements());
                }
            } catch (FinetuneException e) {
                // Our own measurements are still worth reporting.
                notes.add("PyTorch's side not measured: " + e.getMessage());
            }
        }
        Allocator.describe(System.getenv(), settings.torch()).ifPresent(notes::add);
        Allocator.withoutTcmalloc(System.getenv(), System.getProperty("os.name")).ifPresent(notes::add);
        if (underInferencePolicy(settings)) {
            notes.add(Allocator.describeInferencePolicy(settings.workloads().stream()
                    .filter(Workload::foldedInference).map(Workload::configName).toList(), settings.torch()));
        }
        List<BenchResult> results = new ArrayList<>();
        Stream.concat(ours.stream(), torch.stream())
                .map(m -> BenchResult.of(m, describe(m), machine.peakGflops()))
                .forEach(results::add);
        return new BenchReport(date, machine, engineVersion(), torchVersion, settings.threads(), settings.iters(),
                settings.warmup(), settings.isolate(), settings.maxForeignLoad(), results, BenchReport.compare(results),
                BenchReport.targets(results), notes);
    }

    /**
     * Whether this run's folded-inference workloads run under {@code FINETUNE_MALLOC=inference}, as {@code evaluate}
     * and {@code predict} do when nothing is asked of malloc (each workload in its own process only).
     */
    private static boolean underInferencePolicy(BenchSettings settings) {
        return settings.isolate() && settings.workloads().stream().anyMatch(Workload::foldedInference)
                && !ChildJvm.environment(Workload.INFERENCE_FOLDED, System.getenv()).isEmpty();
    }

    private static String tsNote(String error) {
        return "TorchScript ceiling failed: " + error;
    }

    /** The loader runs at 224 with the batch of the first 224 shape (32 by default). */
    private static InputShape loaderShape(BenchSettings settings) {
        return settings.shapes().stream()
                .filter(s -> s.size() == BenchSettings.LOADER_SIZE)
                .findFirst()
                .map(s -> new InputShape(s.batch(), BenchSettings.LOADER_SIZE))
                .orElse(new InputShape(32, BenchSettings.LOADER_SIZE));
    }

    /** Attempts per workload when other processes disturb the measurement. */
    private static final int ATTEMPTS = 3;

    /** How long to wait for an idle machine before each workload. */
    private static final long MAX_IDLE_WAIT_MILLIS = 30 * 60 * 1000L;

    private static Measurement measure(
            Workload w, InputShape shape, BenchSettings settings, Path torchScriptDir, Consumer<String> progress) {
        boolean guard = settings.maxForeignLoad() < 100;
        Measurement best = null;
        for (int attempt = 1; attempt <= (guard ? ATTEMPTS : 1); attempt++) {
            if (guard && !SystemLoad.waitUntilIdle(settings.maxForeignLoad(), MAX_IDLE_WAIT_MILLIS, progress)) {
                progress.accept("the machine did not go idle; measuring anyway");
            }
            Measurement m = measureOnce(w, shape, settings, torchScriptDir);
            if (!m.ok()) {
                progress.accept(w.configName() + " " + shape + " FAILED: " + m.error());
                return m;
            }
            progress.accept(String.format(java.util.Locale.ROOT,
                    "%-26s %-7s %8.1f ms  %7.1f img/s  peak RSS %.0f MB  other processes %.0f%% CPU",
                    w.configName(), shape, m.medianMs(), m.imagesPerSecond(), m.peakRssKb() / 1024.0,
                    m.foreignCpuPercent()));
            if (best == null || m.foreignCpuPercent() < best.foreignCpuPercent()) {
                best = m;
            }
            if (!guard || m.foreignCpuPercent() <= settings.maxForeignLoad()) {
                break;
            }
            progress.accept("other processes used more than " + settings.maxForeignLoad() + "% CPU; repeating");
        }
        return best;
    }

    private static Measurement measureOnce(Workload w, InputShape shape, BenchSettings settings, Path torchScriptDir) {
        if (settings.isolate()) {
            return ChildJvm.run(w, shape, settings, torchScriptDir);
        }
        try {
            return new WorkloadRunner(w, shape, settings.iters(), settings.warmup(), settings.threads())
                    .run(torchScriptDir, settings.dataDir(), settings.profile());
        } catch (Exception e) {
            return Measurement.failed(w.configName(), "ours", shape, settings.threads(), describe(e));
        }
    }

    private static String describe(Measurement m) {
        if (m.side().equals("pytorch")) {
            if (m.workload().equals(TorchSide.INFERENCE_UNDER_OUR_POLICY)) {
                return "PyTorch eager: " + Workload.INFERENCE.description() + ", under FINETUNE_MALLOC=inference's"
                        + " malloc settings";
            }
            if (m.workload().endsWith(TorchSide.UNDER_OUR_ALLOCATOR)) {
                return "PyTorch eager: " + Workload.parse(m.workload().replace(TorchSide.UNDER_OUR_ALLOCATOR, ""))
                        .description() + ", with the allocator our side preloaded";
            }
            return "PyTorch eager: " + Workload.parse(m.workload()).description();
        }
        return Workload.parse(m.workload()).description();
    }

    private static String engineVersion() {
        try {
            return Engines.pytorch().getVersion();
        } catch (RuntimeException e) {
            return "unknown (" + e.getMessage() + ")";
        }
    }

    /** An exception and its causes on one line: what a user needs to see why a workload failed. */
    static String describe(Throwable e) {
        StringBuilder b = new StringBuilder();
        for (Throwable t = e; t != null; t = t.getCause() == t ? null : t.getCause()) {
            if (b.length() > 0) {
                b.append(" <- caused by ");
            }
            b.append(t.getClass().getSimpleName()).append(": ").append(t.getMessage());
        }
        return b.toString();
    }

    private static void deleteTree(Path dir) {
        if (dir == null) {
            return;
        }
        try (Stream<Path> files = Files.walk(dir)) {
            files.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException e) {
            // a leftover temp directory is harmless
        }
    }

    /**
     * The child-process entry point (hidden; {@link ChildJvm} starts it):
     * {@code --one WORKLOAD BATCH SIZE --iters N --warmup W --threads T [--torchscript DIR] [--data DIR] [--profile]}.
     * Prints {@value ChildJvm#MARKER}{@code {json}} and exits.
     */
    public static void main(String[] args) {
        PrintStream out = new PrintStream(new java.io.FileOutputStream(java.io.FileDescriptor.out), true,
                StandardCharsets.UTF_8);
        if (args.length < 4 || !args[0].equals("--one")) {
            System.err.println("usage: Benchmark --one WORKLOAD BATCH SIZE [--iters N] [--warmup W] [--threads T]"
                    + " [--torchscript DIR] [--data DIR] [--profile]  (started by 'finetune bench')");
            System.exit(2);
        }
        Workload workload = Workload.parse(args[1]);
        InputShape shape = new InputShape(Integer.parseInt(args[2]), Integer.parseInt(args[3]));
        int iters = 10;
        int warmup = 3;
        int threads = Runtime.getRuntime().availableProcessors();
        Path torchScript = null;
        Path data = null;
        boolean profile = false;
        for (int i = 4; i < args.length; i++) {
            switch (args[i]) {
                case "--iters" -> iters = Integer.parseInt(args[++i]);
                case "--warmup" -> warmup = Integer.parseInt(args[++i]);
                case "--threads" -> threads = Integer.parseInt(args[++i]);
                case "--torchscript" -> torchScript = Path.of(args[++i]);
                case "--data" -> data = Path.of(args[++i]);
                case "--profile" -> profile = true;
                default -> {
                    System.err.println("unknown argument " + args[i]);
                    System.exit(2);
                }
            }
        }
        Measurement m;
        int code = 0;
        try {
            m = new WorkloadRunner(workload, shape, iters, warmup, threads).run(torchScript, data, profile);
        } catch (Exception | Error e) {
            e.printStackTrace();
            m = Measurement.failed(workload.configName(), "ours", shape, threads, describe(e));
            code = 1;
        }
        try {
            out.println(ChildJvm.MARKER + new ObjectMapper().writeValueAsString(m));
        } catch (IOException e) {
            e.printStackTrace();
            code = 1;
        }
        out.flush();
        System.exit(code);
    }
}
