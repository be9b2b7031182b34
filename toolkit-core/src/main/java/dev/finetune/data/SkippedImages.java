package dev.finetune.data;

import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentSkipListMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The images left out under {@link BadImagePolicy#SKIP}, for the run report. Shared by all epochs' loaders of one
 * run (pass the same instance to each {@link BatchLoader.Options}), so a file that fails every epoch is listed once.
 * Thread-safe: loader workers record into it concurrently.
 */
public final class SkippedImages {
    private final Map<String, String> reasons = new ConcurrentSkipListMap<>();
    private final AtomicLong events = new AtomicLong();

    /** Records that {@code source} was left out because of {@code reason}. */
    public void record(String source, String reason) {
        events.incrementAndGet();
        reasons.putIfAbsent(source, reason);
    }

    /** Distinct sources skipped so far, sorted, each with the first reason seen. */
    public Map<String, String> files() {
        return new TreeMap<>(reasons);
    }

    /** Number of distinct sources skipped so far. */
    public int count() {
        return reasons.size();
    }

    /** Number of times a sample was dropped from a batch, counting each epoch again. */
    public long dropCount() {
        return events.get();
    }
}
