package dev.finetune.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.finetune.engine.ChildJvmOptions;
import dev.finetune.engine.MallocPolicy;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Runs one workload in a fresh JVM — {@code java <same heap and -D options> -cp <same class path>
 * dev.finetune.bench.Benchmark --one ...} — so that its peak RSS (VmHWM) belongs to that workload alone and one
 * workload's allocator caches, JIT state or libtorch primitive caches do not flatter the next. The child prints one
 * line {@value #MARKER}{@code {json}} (a {@link Measurement}) on stdout.
 */
final class ChildJvm {
    static final String MARKER = "BENCH-RESULT ";

    private static final ObjectMapper JSON = new ObjectMapper();

    private ChildJvm() {}

    static Measurement run(Workload workload, InputShape shape, BenchSettings settings, Path torchScriptDir) {
        List<String> cmd = new ArrayList<>();
        cmd.add(javaBinary());
        // Not a thread count that would override --threads.
        cmd.addAll(ChildJvmOptions.inherited(arg -> arg.startsWith("-Dai.djl.pytorch.num_threads=")));
        cmd.add("-cp");
        cmd.add(System.getProperty("java.class.path"));
        cmd.add(Benchmark.class.getName());
        cmd.addAll(oneArgs(workload, shape, settings, torchScriptDir));
        Path stderr = null;
        try {
            stderr = Files.createTempFile("finetune-bench-", ".stderr");
            ProcessBuilder pb = new ProcessBuilder(cmd);
            pb.environment().putAll(environment(workload, System.getenv()));
            Process p = pb.redirectError(stderr.toFile()).start();
            p.getOutputStream().close();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            int code = p.waitFor();
            for (String line : out.lines().toList()) {
                if (line.startsWith(MARKER)) {
                    return JSON.readValue(line.substring(MARKER.length()), Measurement.class);
                }
            }
            return Measurement.failed(workload.configName(), "ours", shape, settings.threads(),
                    "child JVM exited with " + code + " and no result; stderr: " + tail(stderr));
        } catch (IOException e) {
            return Measurement.failed(
                    workload.configName(), "ours", shape, settings.threads(), "cannot run a child JVM: " + e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return Measurement.failed(workload.configName(), "ours", shape, settings.threads(), "interrupted");
        } finally {
            if (stderr != null) {
                try {
                    Files.deleteIfExists(stderr);
                } catch (IOException e) {
                    // a leftover temp file is harmless
                }
            }
        }
    }

    /**
     * The variables a workload's process gets on top of this one's: those the launcher gives {@code evaluate} and
     * {@code predict} for the workloads that stand for them, when {@code environment} asks nothing of malloc — so that
     * they are measured as they run.
     */
    static Map<String, String> environment(Workload workload, Map<String, String> environment) {
        return workload.foldedInference() && MallocPolicy.nothingAsked(environment)
                ? MallocPolicy.INFERENCE_VARIABLES : Map.of();
    }

    /** The arguments of {@link Benchmark#main} for one workload. */
    static List<String> oneArgs(Workload workload, InputShape shape, BenchSettings s, Path torchScriptDir) {
        List<String> a = new ArrayList<>(List.of(
                "--one", workload.configName(), Integer.toString(shape.batch()), Integer.toString(shape.size()),
                "--iters", Integer.toString(s.iters()), "--warmup", Integer.toString(s.warmup()),
                "--threads", Integer.toString(s.threads())));
        if (torchScriptDir != null) {
            a.add("--torchscript");
            a.add(torchScriptDir.toString());
        }
        if (s.dataDir() != null) {
            a.add("--data");
            a.add(s.dataDir().toAbsolutePath().toString());
        }
        if (s.profile()) {
            a.add("--profile");
        }
        return a;
    }

    private static String javaBinary() {
        return ProcessHandle.current().info().command()
                .orElse(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    }

    private static String tail(Path file) throws IOException {
        List<String> lines = Files.readAllLines(file);
        return String.join("\n", lines.subList(Math.max(0, lines.size() - 15), lines.size()));
    }
}
