package dev.finetune.data;

import ai.djl.ndarray.NDArray;
import ai.djl.translate.Transform;
import java.util.SplittableRandom;

/**
 * Mirrors an HWC image left-right with probability 1/2, drawing from a given {@link SplittableRandom}.
 *
 * <p>Why not DJL's {@code RandomFlipLeftRight}: in 0.36 it draws from the JVM-wide {@code RandomUtils} (not seedable
 * per sample across threads), and it discards the result of {@code array.flip(1)}, so it never flips anything.
 */
public final class SeededHorizontalFlip implements Transform {
    private final SplittableRandom random;

    public SeededHorizontalFlip(SplittableRandom random) {
        this.random = random;
    }

    @Override
    public NDArray transform(NDArray array) {
        return random.nextBoolean() ? array.flip(1) : array;
    }
}
