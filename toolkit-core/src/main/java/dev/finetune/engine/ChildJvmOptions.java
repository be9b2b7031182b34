package dev.finetune.engine;

import java.lang.management.ManagementFactory;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Predicate;

/**
 * The JVM options a child JVM (an experiment's run, a benchmark's workload) inherits from this one: heap size,
 * garbage-collector settings — the launcher's, which move a run's peak RSS by hundreds of MB — and system properties
 * ({@code ai.djl.offline}, thread counts, library defaults). Agents, debug ports and module options are not passed on.
 */
public final class ChildJvmOptions {
    /** Heap limit of a child when this JVM was started without one (the launcher's default). */
    public static final String DEFAULT_MAX_HEAP = "-Xmx8g";

    private ChildJvmOptions() {}

    /**
     * This JVM's heap, GC and system-property options, in their order, without those {@code drop} matches; plus
     * {@link #DEFAULT_MAX_HEAP} when none sets the heap limit and {@code -Dai.djl.offline=true} when the engine's
     * offline mode is not set.
     */
    public static List<String> inherited(Predicate<String> drop) {
        return select(ManagementFactory.getRuntimeMXBean().getInputArguments(), drop);
    }

    static List<String> select(List<String> jvmArgs, Predicate<String> drop) {
        List<String> out = new ArrayList<>();
        for (String arg : jvmArgs) {
            boolean passed = arg.startsWith("-Xmx") || arg.startsWith("-Xms") || arg.startsWith("-XX:")
                    || arg.startsWith("-D");
            if (passed && !drop.test(arg)) {
                out.add(arg);
            }
        }
        if (out.stream().noneMatch(a -> a.startsWith("-Xmx") || a.startsWith("-XX:MaxRAMPercentage="))) {
            out.add(0, DEFAULT_MAX_HEAP);
        }
        if (out.stream().noneMatch(a -> a.startsWith("-Dai.djl.offline="))) {
            out.add(0, "-Dai.djl.offline=true");
        }
        return out;
    }
}
