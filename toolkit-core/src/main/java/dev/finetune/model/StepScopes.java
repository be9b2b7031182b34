package dev.finetune.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import java.util.List;
import java.util.function.UnaryOperator;

/**
 * Runs a chain of no-graph steps so that each step's intermediates are freed as soon as the next step's input exists.
 *
 * <p>Why: a DJL op attaches its result to the manager of its first operand, so a forward run on a batch's manager
 * keeps every intermediate activation alive until the batch is closed — for ResNet-18 at 32×224 about 1.2 GB that
 * PyTorch, which frees each tensor when its last reference goes, never holds at once. Here each step runs on a view of
 * its input attached to a fresh sub-manager; the step's output moves to the next sub-manager and the old one, with
 * everything the step allocated, is closed. Only valid without autograd: a DJL scalar operand is a tensor over a
 * Java buffer (no copy), and a graph that saved it would read freed memory in the backward.
 */
public final class StepScopes {
    /**
     * How many {@link #run}s and {@link #releasing} bodies are under way on this thread: inside one, blocks free what
     * they have consumed.
     */
    private static final ThreadLocal<int[]> DEPTH = ThreadLocal.withInitial(() -> new int[1]);

    private StepScopes() {}

    /**
     * Inside a {@link #run} (no autograd) or a {@link #releasing} body (training), closes each array of
     * {@code consumed} that {@code produced} does not hold (an identity or eval-mode dropout returns its input), and
     * returns {@code produced}; elsewhere only returns it.
     *
     * <p>Why: the scope of one step is a whole stage, and a stage's intermediates — for ResNet-18's stem at 32×224,
     * three 103 MB maps — would otherwise all live until the stage ends, where PyTorch frees each as soon as its
     * consumer has run. A block calls this only for op results it produced itself and passed to exactly one consumer
     * (never for a tensor over a Java buffer: see {@link #releasing}).
     */
    public static NDList release(NDList consumed, NDList produced) {
        if (DEPTH.get()[0] > 0 && consumed != produced) {
            for (NDArray a : consumed) {
                if (!holds(produced, a)) {
                    a.close();
                }
            }
        }
        return produced;
    }

    /** {@link #release(NDList, NDList)} for single arrays. */
    public static NDArray release(NDArray consumed, NDArray produced) {
        if (DEPTH.get()[0] > 0 && consumed != produced) {
            consumed.close();
        }
        return produced;
    }

    /**
     * Inside a {@link #run} or {@link #releasing}, closes {@code consumed} (an intermediate whose consumers have all
     * run).
     */
    public static void free(NDList consumed) {
        if (DEPTH.get()[0] > 0) {
            consumed.close();
        }
    }

    /** {@link #free(NDList)} for a single array. */
    public static void free(NDArray consumed) {
        if (DEPTH.get()[0] > 0) {
            consumed.close();
        }
    }

    private static boolean holds(NDList list, NDArray a) {
        for (NDArray b : list) {
            if (b == a) {
                return true;
            }
        }
        return false;
    }

    /**
     * Runs {@code body} (a training forward, autograd recording) with {@link #release} and {@link #free} active, as
     * PyTorch frees a tensor when its last Python reference drops.
     *
     * <p>Why this is safe where closing a whole stage's scope was not: release closes only op results, which libtorch
     * allocated; a result autograd saved for the backward stays alive through libtorch's own reference count, and one
     * it did not save (a BN output consumed by a ReLU, a residual sum) is freed now instead of at the step's end. A
     * stage scope also closed tensors DJL builds over Java buffers (a scalar operand), which autograd can save and
     * libtorch does not own (AllocationNoiseTest).
     */
    public static <T> T releasing(java.util.function.Supplier<T> body) {
        int[] depth = DEPTH.get();
        depth[0]++;
        try {
            return body.get();
        } finally {
            depth[0]--;
        }
    }

    /** Applies {@code steps} in order; the result is on {@code input}'s manager, nothing else survives. */
    public static NDArray run(NDArray input, List<UnaryOperator<NDArray>> steps) {
        NDManager parent = input.getManager();
        NDManager scope = parent.newSubManager();
        int[] depth = DEPTH.get();
        depth[0]++;
        try {
            // A view, so that ops on it attach to the scope rather than to the caller's manager.
            NDArray x = input.reshape(input.getShape());
            x.attach(scope);
            for (UnaryOperator<NDArray> step : steps) {
                NDArray y = step.apply(x);
                NDManager next = parent.newSubManager();
                y.attach(next);
                scope.close();
                scope = next;
                x = y;
            }
            x.attach(parent);
            return x;
        } finally {
            depth[0]--;
            scope.close();
        }
    }
}
