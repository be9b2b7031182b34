package dev.finetune.model;

import ai.djl.ndarray.NDArray;
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
    private StepScopes() {}

    /** Applies {@code steps} in order; the result is on {@code input}'s manager, nothing else survives. */
    public static NDArray run(NDArray input, List<UnaryOperator<NDArray>> steps) {
        NDManager parent = input.getManager();
        NDManager scope = parent.newSubManager();
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
            scope.close();
        }
    }
}
