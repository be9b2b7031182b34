package dev.finetune.cli;

import dev.finetune.bench.BenchReport;
import dev.finetune.bench.BenchSettings;
import dev.finetune.bench.Benchmark;
import dev.finetune.bench.InputShape;
import dev.finetune.bench.Workload;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code finetune bench [--batch B --size S]... [--iters N --warmup W] [--threads T] [--torch] [--json]}: images/s,
 * achieved GFLOP/s and peak RSS of ResNet-18 inference and fine-tuning steps, each in a fresh process.
 */
@Command(name = "bench", mixinStandardHelpOptions = true,
        description = "Benchmark ResNet-18 on this machine: inference, full / frozen-backbone / last-stage training"
                + " steps, the BN-folded frozen step and the data loader, each in a fresh process; with --torch,"
                + " PyTorch's eager side and the same network as one TorchScript graph, and the ratios."
                + " See docs/performance.md.")
final class BenchCommand implements Callable<Integer> {
    @Option(names = "--batch", paramLabel = "B", description = "batch size; with --size, replaces the default shapes"
            + " (32x224 and 128x64); repeat both for several shapes")
    List<Integer> batches = new ArrayList<>();

    @Option(names = "--size", paramLabel = "S", description = "input side in pixels (pairs with --batch)")
    List<Integer> sizes = new ArrayList<>();

    @Option(names = "--iters", description = "timed iterations per workload (default: ${DEFAULT-VALUE})",
            defaultValue = "10")
    int iters;

    @Option(names = "--warmup", description = "untimed iterations first (default: ${DEFAULT-VALUE})",
            defaultValue = "3")
    int warmup;

    @Option(names = "--threads", description = "intra-op threads on both sides (default: the number of cores)")
    Integer threads;

    @Option(names = "--workloads", split = ",", paramLabel = "W", description = "which of ours to run (default: all):"
            + " inference, inference-scoped, inference-folded, inference-folded-ops, inference-bf16, full-step,"
            + " full-step-frozen-bn, full-step-frozen-bn-nchw, frozen-step, last-stage-step, frozen-step-folded,"
            + " frozen-step-folded-cl, frozen-step-folded-cl-stem, frozen-step-bf16, loader")
    List<String> workloads = new ArrayList<>();

    @Option(names = "--torch", description = "also run PyTorch (Debian's /usr/bin/python3) and the TorchScript"
            + " ceiling, and print ratios")
    boolean torch;

    @Option(names = "--profile", description = "also time each stage of inference and of the folded backbone,"
            + " and list the ops with the most self time (libtorch profiler, after the timed iterations)")
    boolean profile;

    @Option(names = "--data", description = "image folder for the loader (default: ${DEFAULT-VALUE})",
            defaultValue = "data/fashion-mnist-b/train")
    Path data;

    @Option(names = "--python", description = "interpreter with torch and torchvision (default: ${DEFAULT-VALUE})",
            defaultValue = "/usr/bin/python3")
    String python;

    @Option(names = "--max-foreign-load", paramLabel = "PCT", defaultValue = "10", description = "wait for an idle"
            + " machine before each workload and repeat (up to 3 times) a run in which other processes used more than"
            + " PCT%% of the CPU; 100 disables (default: ${DEFAULT-VALUE})")
    double maxForeignLoad;

    @Option(names = "--in-process", description = "run every workload in this JVM (faster; peak RSS then"
            + " accumulates and is not per workload)")
    boolean inProcess;

    @Option(names = "--rounds", paramLabel = "N", defaultValue = "1", description = "run the whole schedule N times;"
            + " each round runs every workload next to its references (PyTorch, the TorchScript graph), alternating"
            + " which goes first, and the report gives medians over rounds and each ratio's range (default:"
            + " ${DEFAULT-VALUE})")
    int rounds;

    @CommandLine.Mixin
    JsonMixin output;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        if (batches.size() != sizes.size()) {
            throw new CommandLine.ParameterException(spec.commandLine(),
                    "--batch and --size go in pairs, found " + batches.size() + " --batch and " + sizes.size()
                            + " --size");
        }
        BenchSettings.Builder b = BenchSettings.builder()
                .iters(iters)
                .warmup(warmup)
                .torch(torch)
                .profile(profile)
                .isolate(!inProcess)
                .maxForeignLoad(maxForeignLoad)
                .dataDir(data)
                .python(python)
                .rounds(rounds);
        if (!batches.isEmpty()) {
            List<InputShape> shapes = new ArrayList<>();
            for (int i = 0; i < batches.size(); i++) {
                shapes.add(new InputShape(batches.get(i), sizes.get(i)));
            }
            b.shapes(shapes);
        }
        if (threads != null) {
            b.threads(threads);
        }
        if (!workloads.isEmpty()) {
            b.workloads(workloads.stream().map(Workload::parse).toList());
        }
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        BenchReport report = Benchmark.run(b.build(), line -> {
            err.println("bench: " + line);
            err.flush();
        });
        out.print(output.json() ? JsonOutput.write(report) + System.lineSeparator() : report.toText());
        out.flush();
        return 0;
    }
}
