package dev.finetune.engine;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Set;
import java.util.TreeSet;

/**
 * What this CPU can do that a path depends on, read from the operating system: today whether it has bfloat16
 * arithmetic ({@code avx512_bf16} or {@code amx_bf16} on x86-64), which {@code precision: bf16} needs to be faster
 * rather than emulated.
 */
public final class CpuFeatures {
    /** Overrides the detected flags in tests: a space-separated flag list ({@code -Dfinetune.cpu.flags=...}). */
    public static final String FLAGS_PROPERTY = "finetune.cpu.flags";

    private CpuFeatures() {}

    /** The CPU's feature flags (Linux {@code /proc/cpuinfo}); empty where the system does not say. */
    public static Set<String> flags() {
        String override = System.getProperty(FLAGS_PROPERTY);
        if (override != null) {
            return split(override);
        }
        return Detected.FLAGS;
    }

    /** Read once: the CPU does not change while the process runs. */
    private static final class Detected {
        static final Set<String> FLAGS = read();
    }

    private static Set<String> read() {
        Path cpuinfo = Path.of("/proc/cpuinfo");
        if (!Files.isReadable(cpuinfo)) {
            return Set.of();
        }
        try (var lines = Files.lines(cpuinfo)) {
            return lines.filter(l -> l.startsWith("flags")).findFirst()
                    .map(l -> split(l.substring(l.indexOf(':') + 1)))
                    .orElse(Set.of());
        } catch (IOException | java.io.UncheckedIOException e) {
            return Set.of();
        }
    }

    /** Whether the CPU has native bfloat16 arithmetic. */
    public static boolean hasBf16() {
        Set<String> f = flags();
        return f.contains("avx512_bf16") || f.contains("amx_bf16");
    }

    /** One line for messages: the CPU's model name where the system says it, else the architecture. */
    public static String describe() {
        Path cpuinfo = Path.of("/proc/cpuinfo");
        if (Files.isReadable(cpuinfo)) {
            try (var lines = Files.lines(cpuinfo)) {
                var name = lines.filter(l -> l.startsWith("model name")).findFirst();
                if (name.isPresent()) {
                    return name.get().substring(name.get().indexOf(':') + 1).trim();
                }
            } catch (IOException | java.io.UncheckedIOException e) {
                // fall through to the architecture
            }
        }
        return System.getProperty("os.arch") + " (" + System.getProperty("os.name") + ")";
    }

    private static Set<String> split(String text) {
        Set<String> out = new TreeSet<>();
        for (String f : text.trim().toLowerCase(Locale.ROOT).split("\\s+")) {
            if (!f.isEmpty()) {
                out.add(f);
            }
        }
        return out;
    }
}
