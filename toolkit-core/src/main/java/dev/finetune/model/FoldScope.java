package dev.finetune.model;

import java.util.Map;
import java.util.function.Supplier;

/**
 * The folded conv+BN pairs in effect on this thread while a {@link FoldedStages} prefix runs: {@link Sequential}s look
 * their pairs up here and run one folded convolution instead of the two modules. Thread-local, so a forward on another
 * thread (or any forward outside {@link #with}) runs the plain modules.
 */
final class FoldScope {
    private static final ThreadLocal<Map<Sequential, Map<Integer, FoldedConvBn>>> ACTIVE = new ThreadLocal<>();

    private FoldScope() {}

    /** The folds of {@code s}'s children in effect on this thread, by the index of the conv; null when none. */
    static Map<Integer, FoldedConvBn> pairsOf(Sequential s) {
        Map<Sequential, Map<Integer, FoldedConvBn>> m = ACTIVE.get();
        return m == null ? null : m.get(s);
    }

    /** Runs {@code body} with {@code folds} in effect on this thread. */
    static <T> T with(Map<Sequential, Map<Integer, FoldedConvBn>> folds, Supplier<T> body) {
        Map<Sequential, Map<Integer, FoldedConvBn>> before = ACTIVE.get();
        ACTIVE.set(folds);
        try {
            return body.get();
        } finally {
            if (before == null) {
                ACTIVE.remove();
            } else {
                ACTIVE.set(before);
            }
        }
    }
}
