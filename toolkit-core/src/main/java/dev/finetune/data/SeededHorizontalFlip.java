package dev.finetune.data;

import java.util.SplittableRandom;

/**
 * torchvision's {@code RandomHorizontalFlip()}: mirrors an image left-right with probability 1/2, drawing from a
 * given {@link SplittableRandom}.
 *
 * <p>Why not DJL's {@code RandomFlipLeftRight}: in 0.36 it draws from the JVM-wide {@code RandomUtils} (not seedable
 * per sample across threads), and it discards the result of {@code array.flip(1)}, so it never flips anything.
 */
public final class SeededHorizontalFlip {
    private final SplittableRandom random;

    public SeededHorizontalFlip(SplittableRandom random) {
        this.random = random;
    }

    /** The image mirrored (probability 1/2) or as it is. */
    public RgbImage apply(RgbImage image) {
        return random.nextBoolean() ? PilTransforms.hflip(image) : image;
    }
}
