package dev.finetune.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;

/**
 * A frozen prefix of stages run on a fast path (BN folded into the convolutions) behind a guard that checks it against
 * the plain network on this host: {@link GuardedPrefix} for the ResNet family (with channels-last), {@link FoldedStages}
 * for the other families.
 */
public interface FrozenPrefix extends AutoCloseable {
    /** The stage index the output enters at. */
    int toStage();

    /** Whether the prefix still runs folded (false after the guard switched folding off). */
    boolean isFolded();

    /** What was checked and decided so far. */
    FastPathReport report();

    /** The output of stages {@code [0, toStage)} for {@code x}, with no autograd, on {@code x}'s manager. */
    NDArray forward(NDArray x);

    /** Checks the path now on a random batch of {@code shape}, so a report exists before training. */
    void verify(Shape shape, NDManager manager);

    @Override
    void close();
}
