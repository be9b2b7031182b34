package dev.finetune.engine;

import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Consumer;

/**
 * Warnings that a user must see once per process, such as a fast path switched off because the engine computed it
 * wrongly on this CPU. They go to standard error unless a program installs its own sink (PyTorch's
 * {@code warnings.warn} with the "once" filter, in spirit).
 */
public final class Warnings {
    private static final Set<String> SEEN = ConcurrentHashMap.newKeySet();
    private static volatile Consumer<String> sink = line -> System.err.println("warning: " + line);

    private Warnings() {}

    /** Prints {@code message} the first time {@code key} is seen in this process; returns whether it printed. */
    public static boolean warnOnce(String key, String message) {
        if (!SEEN.add(key)) {
            return false;
        }
        sink.accept(message);
        return true;
    }

    /** Sends warnings to {@code newSink} instead of standard error. */
    public static void setSink(Consumer<String> newSink) {
        sink = newSink;
    }
}
