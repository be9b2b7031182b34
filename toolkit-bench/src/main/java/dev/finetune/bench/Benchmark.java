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
import java.util.LinkedHashMap;
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
        List<Workload> ours = new ArrayList<>();
        for (Workload w : settings.workloads()) {
            String bf16Missing = w.bf16() ? dev.finetune.model.Precision.BF16.whyUnavailable() : null;
            if (bf16Missing != null) {
                String note = w.configName() + " not measured: " + bf16Missing;
                if (!notes.contains(note)) {
                    notes.add(note);
                }
            } else if (w != Workload.LOADER) {
                ours.add(w);
            }
        }
        Schedule schedule = new Schedule(settings, progress, notes);
        Path dir = null;
        List<List<Measurement>> rounds = new ArrayList<>();
        try {
            if (settings.torch()) {
                try {
                    dir = Files.createTempDirectory("finetune-bench-ts-");
                    schedule.torchVersion = schedule.side.trace(dir);
                    schedule.torchScriptDir = dir;
                } catch (IOException | FinetuneException e) {
                    notes.add("TorchScript ceiling not measured: " + e.getMessage());
                }
            }
            for (int round = 1; round <= settings.rounds(); round++) {
                if (settings.rounds() > 1) {
                    progress.accept("round " + round + " of " + settings.rounds());
                }
                List<Measurement> measured = new ArrayList<>();
                for (InputShape shape : settings.shapes()) {
                    for (Map.Entry<String, List<Workload>> group : groups(ours).entrySet()) {
                        measured.addAll(schedule.group(group.getKey(), group.getValue(), shape, round % 2 == 1));
                    }
                }
                if (round == 1 && settings.workloads().contains(Workload.LOADER)) {
                    if (settings.dataDir() != null && Files.isDirectory(settings.dataDir())) {
                        measured.add(measure(Workload.LOADER, loaderShape(settings), settings, null, progress));
                    } else {
                        notes.add("loader not measured: no image folder at " + settings.dataDir());
                    }
                }
                rounds.add(measured);
            }
        } finally {
            deleteTree(dir);
        }
        Allocator.describe(System.getenv(), settings.torch()).ifPresent(notes::add);
        Allocator.withoutTcmalloc(System.getenv(), System.getProperty("os.name")).ifPresent(notes::add);
        if (underInferencePolicy(settings)) {
            notes.add(Allocator.describeInferencePolicy(settings.workloads().stream()
                    .filter(Workload::foldedInference).map(Workload::configName).toList(), settings.torch()));
        }
        Comparator<Measurement> order = reportOrder(settings, schedule.side);
        List<List<BenchResult>> perRound = new ArrayList<>();
        for (List<Measurement> round : rounds) {
            perRound.add(round.stream().sorted(order)
                    .map(m -> BenchResult.of(m, describe(m), machine.peakGflops())).toList());
        }
        Map<String, List<Measurement>> byRow = new LinkedHashMap<>();
        rounds.stream().flatMap(List::stream).sorted(order)
                .forEach(m -> byRow.computeIfAbsent(m.side() + " " + m.workload() + " " + m.batch() + "x" + m.size(),
                        k -> new ArrayList<>()).add(m));
        List<BenchResult> results = byRow.values().stream()
                .map(ms -> BenchResult.overRounds(ms, describe(ms.get(0)), machine.peakGflops())).toList();
        List<BenchReport.Comparison> comparisons = BenchReport.compareRounds(perRound);
        return new BenchReport(date, machine, engineVersion(), schedule.torchVersion, settings.threads(),
                settings.iters(), settings.warmup(), settings.isolate(), settings.maxForeignLoad(), settings.rounds(),
                results, comparisons, BenchReport.targets(results, comparisons), notes);
    }

    /**
     * Our workloads grouped by the PyTorch workload they compare with, in {@link Workload#OURS} order: a group is
     * measured together with its references, so that they see the host at the same minutes.
     */
    static Map<String, List<Workload>> groups(List<Workload> ours) {
        Map<String, List<Workload>> groups = new LinkedHashMap<>();
        for (Workload w : ours) {
            groups.computeIfAbsent(w.torchCounterpart(), k -> new ArrayList<>()).add(w);
        }
        return groups;
    }

    /** Report rows as before rounds existed: ours by shape and workload, the loader, the graph, then PyTorch's. */
    private static Comparator<Measurement> reportOrder(BenchSettings settings, TorchSide side) {
        List<String> torchNames = side == null ? List.of() : side.workloads();
        return Comparator.<Measurement>comparingInt(m -> {
            if (m.side().equals("pytorch")) {
                return m.workload().equals(TorchSide.INFERENCE_UNDER_OUR_POLICY) ? 4
                        : m.workload().endsWith(TorchSide.UNDER_OUR_ALLOCATOR) ? 5 : 3;
            }
            Workload w = Workload.parse(m.workload());
            return w == Workload.LOADER ? 1 : Workload.TORCHSCRIPT.contains(w) ? 2 : 0;
        }).thenComparingInt(m -> shapeIndex(settings, m)).thenComparingInt(m -> {
            if (m.side().equals("pytorch")) {
                int i = torchNames.indexOf(m.workload().replace(TorchSide.UNDER_OUR_ALLOCATOR, ""));
                return i < 0 ? torchNames.size() : i;
            }
            Workload w = Workload.parse(m.workload());
            return Workload.TORCHSCRIPT.contains(w) ? Workload.TORCHSCRIPT.indexOf(w) : Workload.OURS.indexOf(w);
        });
    }

    private static int shapeIndex(BenchSettings settings, Measurement m) {
        int i = settings.shapes().indexOf(new InputShape(m.batch(), m.size()));
        return i < 0 ? settings.shapes().size() : i;
    }

    /**
     * One run's order of measurements: each group of our workloads next to its references — the TorchScript graph
     * (for inference and the full step), PyTorch's counterpart as its users run it, again with our side's allocator
     * when the launcher preloaded one, and under evaluate's malloc settings where those apply — ours first or last.
     */
    private static final class Schedule {
        final BenchSettings settings;
        final Consumer<String> progress;
        final List<String> notes;
        final TorchSide side;
        final Map<String, String> allocator = Allocator.preloadedByLauncher(System.getenv());
        final boolean inferencePolicy;
        Path torchScriptDir;
        String torchVersion;
        boolean torchFailed;

        Schedule(BenchSettings settings, Consumer<String> progress, List<String> notes) {
            this.settings = settings;
            this.progress = progress;
            this.notes = notes;
            this.side = settings.torch() ? new TorchSide(settings) : null;
            this.inferencePolicy = underInferencePolicy(settings);
        }

        List<Measurement> group(String counterpart, List<Workload> members, InputShape shape, boolean oursFirst) {
            List<Measurement> out = new ArrayList<>();
            if (oursFirst) {
                members.forEach(w -> out.add(measure(w, shape, settings, null, progress)));
                out.addAll(references(counterpart, members, shape));
            } else {
                out.addAll(references(counterpart, members, shape));
                members.forEach(w -> out.add(measure(w, shape, settings, null, progress)));
            }
            return out;
        }

        private List<Measurement> references(String counterpart, List<Workload> members, InputShape shape) {
            List<Measurement> out = new ArrayList<>();
            if (side == null) {
                return out;
            }
            if (torchScriptDir != null) {
                for (Workload ts : Workload.TORCHSCRIPT) {
                    if (members.contains(BenchReport.oursFor(ts))) {
                        Measurement m = measure(ts, shape, settings, torchScriptDir, progress);
                        out.add(m);
                        if (m.error() != null && !notes.contains(tsNote(m.error()))) {
                            notes.add(tsNote(m.error()));
                        }
                    }
                }
            }
            if (torchFailed || !side.workloads().contains(counterpart)) {
                return out;
            }
            try {
                out.addAll(pytorch(counterpart, shape, Map.of(), counterpart));
                if (!allocator.isEmpty()) {
                    out.addAll(pytorch(counterpart, shape, allocator, counterpart + TorchSide.UNDER_OUR_ALLOCATOR));
                }
                if (inferencePolicy && counterpart.equals(Workload.INFERENCE.torchCounterpart())) {
                    out.addAll(pytorch(counterpart, shape, dev.finetune.engine.MallocPolicy.INFERENCE_VARIABLES,
                            TorchSide.INFERENCE_UNDER_OUR_POLICY));
                }
            } catch (FinetuneException e) {
                // Our own measurements are still worth reporting.
                notes.add("PyTorch's side not measured: " + e.getMessage());
                torchFailed = true;
            }
            return out;
        }

        private List<Measurement> pytorch(String workload, InputShape shape, Map<String, String> variables,
                String name) {
            TorchSide.Results r = side.runOne(progress, workload, shape, variables, name);
            if (torchVersion == null) {
                torchVersion = r.torchVersion();
            }
            return r.measurements();
        }
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
