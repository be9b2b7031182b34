package dev.finetune.bench;

import dev.finetune.engine.MemoryUse;

/** This process's resident memory in KiB, as the benchmark reports it (0 where there is no procfs). */
public final class ProcessMemory {
    private ProcessMemory() {}

    /** {@code VmHWM}: the peak resident set size since the process started. */
    public static long peakRssKb() {
        return Math.max(0, MemoryUse.peakRssBytes() / 1024);
    }

    /** {@code VmRSS}: the resident set size now. */
    public static long rssKb() {
        return Math.max(0, MemoryUse.rssBytes() / 1024);
    }
}
