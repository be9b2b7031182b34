package dev.finetune.bench;

import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.stream.Collectors;

/**
 * The glibc malloc settings a benchmark ran under. Peak RSS depends on them as much as on the tensors a step keeps
 * alive (docs/performance.md: with freed tensors returned at once, our full step and PyTorch's peak at the same
 * 1,055 MB), so a report that does not name them cannot be compared with another.
 */
final class Allocator {
    private Allocator() {}

    /** The variables the {@code finetune} launcher set for {@code FINETUNE_MALLOC} (its {@code FINETUNE_MALLOC_SET}). */
    static List<String> launcherVariables(Map<String, String> environment) {
        return dev.finetune.engine.MallocPolicy.launcherVariables(environment);
    }

    /**
     * A report note for the folded-inference {@code workloads}, which ran under {@code FINETUNE_MALLOC=inference} as
     * {@code evaluate} and {@code predict} do, and, {@code torchSide}, for PyTorch's inference under the same.
     */
    static String describeInferencePolicy(List<String> workloads, boolean torchSide) {
        String vars = new TreeMap<>(dev.finetune.engine.MallocPolicy.INFERENCE_VARIABLES).entrySet().stream()
                .map(e -> e.getKey() + "=" + e.getValue()).collect(Collectors.joining(" "));
        return "allocator: " + String.join(", ", workloads) + " ran under " + vars + " (FINETUNE_MALLOC=inference,"
                + " which the launcher gives evaluate and predict unless --no-fold-bn or a malloc setting is given);"
                + " every other workload under glibc's defaults"
                + (torchSide ? "; PyTorch's side under glibc's defaults, as its users run it, and its inference again"
                        + " under the same settings as " + TorchSide.INFERENCE_UNDER_OUR_POLICY : "");
    }

    /**
     * The variables (and values) with which the launcher preloaded an allocator in place of glibc's malloc
     * ({@code LD_PRELOAD} among its {@code FINETUNE_MALLOC_SET}), or none.
     */
    static Map<String, String> preloadedByLauncher(Map<String, String> environment) {
        List<String> launcher = launcherVariables(environment);
        if (!launcher.contains("LD_PRELOAD") || dev.finetune.engine.MallocPolicy.preloaded(environment).isEmpty()) {
            return Map.of();
        }
        Map<String, String> vars = new TreeMap<>();
        launcher.stream().filter(environment::containsKey).forEach(k -> vars.put(k, environment.get(k)));
        return vars;
    }

    /**
     * A report note for a Linux run in which nothing was asked of malloc and no allocator preloaded: the launcher
     * found no tcmalloc, so these figures are glibc's, not those of the launcher's default where tcmalloc is installed.
     */
    static Optional<String> withoutTcmalloc(Map<String, String> environment, String osName) {
        if (osName == null || !osName.startsWith("Linux")
                || !dev.finetune.engine.MallocPolicy.nothingAsked(environment)) {
            return Optional.empty();
        }
        return Optional.of("allocator: glibc's malloc — the launcher found no tcmalloc on this system (Debian/Ubuntu:"
                + " apt-get install libtcmalloc-minimal4), which it preloads where installed; the README's figures"
                + " ran on it (docs/performance.md, 2026-12-06, eleventh session)");
    }

    /**
     * A report note naming the malloc settings in {@code environment} (this process's), if any differ from glibc's
     * defaults, and those PyTorch's side runs with when {@code torchSide}.
     */
    static Optional<String> describe(Map<String, String> environment, boolean torchSide) {
        Map<String, String> env = new TreeMap<>();
        environment.forEach((k, v) -> {
            if (k.startsWith("MALLOC_") || k.equals("GLIBC_TUNABLES") || k.startsWith("TCMALLOC_")
                    || k.equals("LD_PRELOAD")) {
                env.put(k, v);
            }
        });
        if (env.isEmpty()) {
            return Optional.empty();
        }
        List<String> launcher = launcherVariables(environment);
        String all = env.entrySet().stream().map(e -> e.getKey() + "=" + e.getValue()).collect(Collectors.joining(" "));
        String policy = environment.get("FINETUNE_MALLOC");
        StringBuilder b = new StringBuilder("allocator: our side ran with ").append(all);
        if (!launcher.isEmpty() && policy != null) {
            b.append(" (FINETUNE_MALLOC=").append(policy);
            if ("lean-steps".equals(policy)) {
                // MallocPolicy's half, which no variable shows: the threshold full steps set at run time.
                b.append(": ").append(dev.finetune.engine.MallocPolicy.THRESHOLD_MIB)
                        .append(" MiB mmap threshold from the first full step with an input of ")
                        .append(dev.finetune.engine.MallocPolicy.LARGE_INPUT_MIB).append(" MiB or more");
            }
            b.append(")");
        } else if (launcher.contains("LD_PRELOAD")) {
            b.append(" (the launcher's default where the system has tcmalloc)");
        }
        if (torchSide) {
            List<String> shared = env.keySet().stream().filter(k -> !launcher.contains(k)).toList();
            b.append(shared.isEmpty() ? "; PyTorch's side with glibc's defaults"
                    : "; PyTorch's side with " + String.join(", ", shared) + " as well");
            if (!preloadedByLauncher(environment).isEmpty()) {
                b.append(", and again with our side's allocator (workloads ending in ")
                        .append(TorchSide.UNDER_OUR_ALLOCATOR).append(")");
            }
        }
        return Optional.of(b.toString());
    }
}
