package dev.finetune.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** This process's resident memory from {@code /proc/self/status}, in KiB (0 where there is no procfs). */
public final class ProcessMemory {
    private ProcessMemory() {}

    /** {@code VmHWM}: the peak resident set size since the process started. */
    public static long peakRssKb() {
        return field("VmHWM");
    }

    /** {@code VmRSS}: the resident set size now. */
    public static long rssKb() {
        return field("VmRSS");
    }

    private static long field(String name) {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith(name + ":")) {
                    return Long.parseLong(line.substring(name.length() + 1).trim().split("\\s+")[0]);
                }
            }
        } catch (IOException | NumberFormatException e) {
            // no procfs: report 0 rather than fail a benchmark
        }
        return 0;
    }
}
