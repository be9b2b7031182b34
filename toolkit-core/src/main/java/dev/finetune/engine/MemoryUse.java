package dev.finetune.engine;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** The process's resident memory from /proc (Linux): what the OS actually gave us, native libtorch included. */
public final class MemoryUse {
    private MemoryUse() {}

    /** Peak resident set size in bytes (VmHWM), or -1 where /proc is not available. */
    public static long peakRssBytes() {
        return field("VmHWM:");
    }

    /** Current resident set size in bytes (VmRSS), or -1. */
    public static long rssBytes() {
        return field("VmRSS:");
    }

    /** Anonymous memory the kernel backs with transparent huge pages now (AnonHugePages), in bytes, or -1. */
    public static long anonHugePagesBytes() {
        return field(Path.of("/proc/self/smaps_rollup"), "AnonHugePages:");
    }

    /** glibc's {@code malloc_trim} and {@code mallopt}, looked up once; null off glibc. */
    private static final com.sun.jna.Function MALLOC_TRIM = glibc("malloc_trim");
    private static final com.sun.jna.Function MALLOPT = glibc("mallopt");

    /** glibc's {@code mallopt(parameter, value)}; false off glibc or where glibc refused it. */
    static boolean mallopt(int parameter, int value) {
        return MALLOPT != null && MALLOPT.invokeInt(new Object[] {parameter, value}) == 1;
    }

    /**
     * Gives the free pages glibc's malloc keeps (in every arena, not only at the top of the heap) back to the OS —
     * {@code malloc_trim(0)} — and returns how many bytes the resident set shrank by (0 off glibc). For the seams
     * between phases that allocate differently (training steps, validation, checkpoint writing): each phase's freed
     * tensors otherwise stay resident while the next one grows the heap elsewhere. Costs tens of milliseconds.
     */
    public static long releaseFreePages() {
        if (MALLOC_TRIM == null) {
            return 0;
        }
        long before = rssBytes();
        MALLOC_TRIM.invokeInt(new Object[] {0});
        return Math.max(0, before - rssBytes());
    }

    private static com.sun.jna.Function glibc(String function) {
        if (!System.getProperty("os.name", "").startsWith("Linux")) {
            return null;
        }
        try {
            com.sun.jna.NativeLibrary c = com.sun.jna.NativeLibrary.getInstance("c");
            // gnu_get_libc_version exists only in glibc (not musl), whose malloc the callers' comments describe.
            c.getFunction("gnu_get_libc_version");
            return c.getFunction(function);
        } catch (LinkageError | RuntimeException e) {
            // No JNA dispatch library (e.g. a temp folder mounted noexec), or no such symbol: leave malloc alone.
            return null;
        }
    }

    private static long field(String name) {
        return field(Path.of("/proc/self/status"), name);
    }

    /** A "Name:  123 kB" line of a /proc file, in bytes, or -1. */
    private static long field(Path file, String name) {
        try {
            for (String line : Files.readAllLines(file)) {
                if (line.startsWith(name)) {
                    String[] parts = line.substring(name.length()).trim().split("\\s+");
                    return Long.parseLong(parts[0]) * 1024;
                }
            }
        } catch (IOException | RuntimeException e) {
            return -1;
        }
        return -1;
    }
}
