package dev.finetune.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.finetune.ErrorKind;
import dev.finetune.FinetuneException;
import dev.finetune.engine.MallocPolicy;
import java.io.BufferedReader;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * PyTorch's side of the comparison: {@code scripts/bench/torch_bench.py} run by Debian's interpreter (torch 1.13 and
 * torchvision), which runs each workload in its own subprocess and prints JSON; and the TorchScript archives it traces
 * for the engine-ceiling workloads.
 */
final class TorchSide {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final BenchSettings settings;

    /** torch_bench.py's WORKLOADS (its default list). */
    private static final List<String> DEFAULT_WORKLOADS = List.of("inference", "full-step", "full-step-frozen-bn",
            "frozen-step", "last-stage-step");

    TorchSide(BenchSettings settings) {
        this.settings = settings;
    }

    /** The results of PyTorch's workloads, with the torch version. */
    record Results(String torchVersion, List<Measurement> measurements) {}

    /**
     * PyTorch's workloads: the script's default ones, and the bf16 one when ours is measured (it needs bf16
     * instructions).
     */
    List<String> workloads() {
        List<String> workloads = new ArrayList<>(DEFAULT_WORKLOADS);
        if (settings.workloads().contains(Workload.FULL_STEP_BF16_MIXED) && !Workload.FULL_STEP_BF16_MIXED.bf16Missing()) {
            workloads.add(Workload.FULL_STEP_BF16_MIXED.torchCounterpart());
        }
        return workloads;
    }

    /**
     * The suffix of the workloads run with the allocator our side ran with ({@link #runOne} with the launcher's
     * preloaded allocator, {@code LD_PRELOAD} and its settings): how much of a lead over PyTorch as its users run it
     * is the allocator, which a PyTorch user can preload as well (PyTorch's own CPU launcher,
     * {@code torch.backends.xeon.run_cpu}, does).
     */
    static final String UNDER_OUR_ALLOCATOR = "+our-malloc";

    /**
     * The name under which PyTorch's inference is reported when run with the malloc settings of
     * {@code FINETUNE_MALLOC=inference} ({@link MallocPolicy#INFERENCE_VARIABLES}), which {@code evaluate} and
     * {@code predict} run under: how much of our default inference's lead over PyTorch as its users run it is the
     * malloc settings, which a PyTorch user could set as well.
     */
    static final String INFERENCE_UNDER_OUR_POLICY = "inference-malloc";

    /**
     * PyTorch's {@code workload} at {@code shape} in its own subprocess, with {@code variables} added to its
     * environment (none: as PyTorch's users run it, without our launcher's malloc policy), reported as {@code name}.
     */
    Results runOne(Consumer<String> progress, String workload, InputShape shape, Map<String, String> variables,
            String name) {
        return results(runScript(progress, variables, args(shape.toString(), List.of(workload))), name);
    }

    private String[] args(String shapes, List<String> workloads) {
        return new String[] {"--shapes", shapes, "--iters", Integer.toString(settings.iters()),
            "--warmup", Integer.toString(settings.warmup()), "--threads", Integer.toString(settings.threads()),
            "--max-foreign-load", Double.toString(settings.maxForeignLoad()),
            "--workloads", String.join(",", workloads)};
    }

    /** The script's results as measurements, each workload named by {@code name} from the script's name. */
    private static Results results(JsonNode root, String name) {
        List<Measurement> out = new ArrayList<>();
        for (JsonNode r : root.get("results")) {
            List<Double> times = new ArrayList<>();
            r.get("times_ms").forEach(t -> times.add(t.asDouble()));
            String workload = r.get("workload").asText();
            int batch = r.get("batch").asInt();
            int size = r.get("size").asInt();
            Workload ours = Workload.parse(workload);
            long flops = batch * FlopCount.forWorkload(ours, size);
            out.add(new Measurement(name, "pytorch", batch, size, r.get("threads").asInt(), times, flops,
                    r.get("setup_rss_kb").asLong(), r.get("peak_rss_kb").asLong(),
                    r.path("foreign_cpu_percent").asDouble(), r.path("kernel_cpu_percent").asDouble(),
                    r.path("minor_faults_per_iteration").asLong(), null, null, null));
        }
        return new Results(root.get("torch_version").asText(), out);
    }

    /** Traces torchvision's resnet18 (fc to 10 classes) into {@code dir}; returns torch's version. */
    String trace(Path dir) {
        return runScript(s -> { }, Map.of(), "--trace", dir.toString()).get("torch_version").asText();
    }

    private JsonNode runScript(Consumer<String> progress, Map<String, String> variables, String... args) {
        List<String> cmd = new ArrayList<>(List.of(settings.python(), settings.torchScript().toString()));
        cmd.addAll(List.of(args));
        if (!Files.isRegularFile(settings.torchScript())) {
            throw new FinetuneException(ErrorKind.USAGE, "PyTorch benchmark script not found: "
                    + settings.torchScript().toAbsolutePath() + " (run from the repository root)");
        }
        try {
            ProcessBuilder pb = new ProcessBuilder(cmd);
            // PyTorch runs as its users run it: without the malloc policy our launcher chose (FINETUNE_MALLOC).
            pb.environment().keySet().removeAll(Allocator.launcherVariables(System.getenv()));
            pb.environment().putAll(variables);
            Process p = pb.start();
            p.getOutputStream().close();
            StringBuilder err = new StringBuilder();
            Thread errReader = new Thread(() -> {
                try (BufferedReader r = p.errorReader(StandardCharsets.UTF_8)) {
                    for (String line = r.readLine(); line != null; line = r.readLine()) {
                        progress.accept(line);
                        err.append(line).append('\n');
                    }
                } catch (IOException e) {
                    err.append("(stderr unreadable: ").append(e).append(")\n");
                }
            }, "torch-bench-stderr");
            errReader.start();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            int code = p.waitFor();
            errReader.join();
            if (code != 0) {
                throw new FinetuneException(ErrorKind.INTERNAL, "PyTorch benchmark failed (exit " + code + "): "
                        + String.join(" ", cmd) + "\n" + err
                        + "(needs Debian's python3-torch and python3-torchvision under " + settings.python() + ")");
            }
            List<String> lines = out.lines().filter(l -> l.startsWith("{")).toList();
            if (lines.isEmpty()) {
                throw new FinetuneException(ErrorKind.INTERNAL, "PyTorch benchmark printed no JSON: " + out);
            }
            return JSON.readTree(lines.get(lines.size() - 1));
        } catch (IOException e) {
            throw new FinetuneException(ErrorKind.INTERNAL, "cannot run " + String.join(" ", cmd) + ": " + e, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new FinetuneException(ErrorKind.INTERRUPTED, "interrupted while PyTorch's benchmark ran", e);
        }
    }
}
