package dev.finetune.data;

import java.util.SplittableRandom;

/**
 * torchvision's {@code RandomResizedCrop(size, scale=(0.08, 1), ratio=(3/4, 4/3))} on an {@link RgbImage}, drawing
 * from a given {@link SplittableRandom}; the area range {@code scale} can be set (torchvision's and timm's
 * {@code scale} argument), the ratio range is torchvision's default.
 *
 * <p>Why not DJL's {@code RandomResizedCrop}: it draws from {@code ai.djl.util.RandomUtils}, one JVM-wide
 * {@code Random} shared by all loader threads, so which sample gets which crop depends on thread timing; and its
 * sampling differs from torchvision's (uniform rather than log-uniform aspect ratio, no retry before the fallback).
 * Here the parameters follow torchvision's {@code get_params} (from a seeded generator, not torch's), and the pixels
 * are exactly torchvision's for that box: {@code F.resized_crop}, the uint8 crop resized by Pillow's bilinear
 * ({@link PilTransforms#resizedCrop}).
 */
public final class SeededRandomResizedCrop {
    /** torchvision's default area range, (0.08, 1). */
    public static final Scale DEFAULT_SCALE = new Scale(0.08, 1.0);
    static final double MIN_RATIO = 3.0 / 4.0;
    static final double MAX_RATIO = 4.0 / 3.0;

    private final int size;
    private final SplittableRandom random;
    private final Interpolation interpolation;
    private final Scale scale;

    /**
     * The range of the crop's area as a fraction of the image's, torchvision's {@code scale=(min, max)}.
     *
     * @param min smallest fraction, in (0, max]
     * @param max largest fraction, in [min, 1]
     */
    public record Scale(double min, double max) {
        public Scale {
            if (!(min > 0 && min <= max && max <= 1)) {
                throw new IllegalArgumentException("crop scale must satisfy 0 < min <= max <= 1, found (" + min
                        + ", " + max + ")");
            }
        }
    }

    /**
     * @param size output height and width
     * @param random source of the crop; one per sample, so results do not depend on the order samples are processed
     */
    public SeededRandomResizedCrop(int size, SplittableRandom random) {
        this(size, random, Interpolation.BILINEAR);
    }

    /** With the resize's filter (torchvision's {@code RandomResizedCrop(size, interpolation=...)}). */
    public SeededRandomResizedCrop(int size, SplittableRandom random, Interpolation interpolation) {
        this(size, random, interpolation, DEFAULT_SCALE);
    }

    /** With the area range {@code scale} (torchvision's {@code RandomResizedCrop(size, scale=...)}). */
    public SeededRandomResizedCrop(int size, SplittableRandom random, Interpolation interpolation, Scale scale) {
        this.size = size;
        this.random = random;
        this.interpolation = interpolation;
        this.scale = scale;
    }

    /** Draws a box and returns it resized to {@code size x size}. */
    public RgbImage apply(RgbImage image) {
        int[] box = sampleBox(image.height(), image.width(), random, scale);
        return PilTransforms.resizedCrop(image, box[0], box[1], box[2], box[3], size, interpolation);
    }

    /**
     * torchvision's {@code RandomResizedCrop.get_params} ({@code int(round(x))} is Python's round, half to even,
     * hence {@code Math.rint}): ten tries at a box with a random area fraction in
     * [0.08, 1] and a log-uniform aspect ratio in [3/4, 4/3], then a centre crop clamped to that ratio range.
     *
     * @return {top, left, height, width}
     */
    static int[] sampleBox(int height, int width, SplittableRandom random) {
        return sampleBox(height, width, random, DEFAULT_SCALE);
    }

    /** As {@link #sampleBox(int, int, SplittableRandom)} with the area fraction uniform in {@code scale}. */
    static int[] sampleBox(int height, int width, SplittableRandom random, Scale scale) {
        double area = (double) height * width;
        double logMin = Math.log(MIN_RATIO);
        double logMax = Math.log(MAX_RATIO);
        for (int attempt = 0; attempt < 10; attempt++) {
            double targetArea = area * (scale.min() + (scale.max() - scale.min()) * random.nextDouble());
            double aspect = Math.exp(logMin + (logMax - logMin) * random.nextDouble());
            int w = (int) Math.rint(Math.sqrt(targetArea * aspect));
            int h = (int) Math.rint(Math.sqrt(targetArea / aspect));
            if (w > 0 && w <= width && h > 0 && h <= height) {
                int top = random.nextInt(height - h + 1);
                int left = random.nextInt(width - w + 1);
                return new int[] {top, left, h, w};
            }
        }
        double inRatio = (double) width / height;
        int w;
        int h;
        if (inRatio < MIN_RATIO) {
            w = width;
            h = (int) Math.rint(w / MIN_RATIO);
        } else if (inRatio > MAX_RATIO) {
            h = height;
            w = (int) Math.rint(h * MAX_RATIO);
        } else {
            w = width;
            h = height;
        }
        return new int[] {(height - h) / 2, (width - w) / 2, h, w};
    }
}
