package dev.finetune.data;

import java.util.SplittableRandom;

/**
 * torchvision's {@code ColorJitter(brightness, contrast, saturation, hue)} on the uint8 image: the four adjustments in
 * a random order, each factor uniform in [max(0, 1 − x), 1 + x] (hue in [−h, h]), each Pillow's
 * ({@link PilOps}: the {@code ImageEnhance} blends and the HSV round trip of {@code adjust_hue}), drawn from the
 * sample's generator.
 *
 * @param brightness brightness jitter, 0 for off
 * @param contrast contrast jitter, 0 for off
 * @param saturation saturation jitter, 0 for off
 * @param hue hue jitter in [0, 0.5], 0 for off
 */
public record ColorJitter(double brightness, double contrast, double saturation, double hue) {
    public ColorJitter {
        if (!(brightness >= 0) || !(contrast >= 0) || !(saturation >= 0) || !(hue >= 0 && hue <= 0.5)) {
            throw new IllegalArgumentException("brightness, contrast and saturation must be >= 0 and hue in [0, 0.5];"
                    + " found " + brightness + ", " + contrast + ", " + saturation + ", " + hue);
        }
    }

    /** Whether any adjustment is on. */
    public boolean active() {
        return brightness > 0 || contrast > 0 || saturation > 0 || hue > 0;
    }

    /** The jittered image. */
    public RgbImage apply(RgbImage image, SplittableRandom random) {
        int[] order = {0, 1, 2, 3};
        for (int i = 3; i > 0; i--) { // a uniform permutation, as torch.randperm(4)
            int j = random.nextInt(i + 1);
            int t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        double b = factor(brightness, random);
        double c = factor(contrast, random);
        double s = factor(saturation, random);
        double h = hue > 0 ? -hue + 2 * hue * random.nextDouble() : 0;
        RgbImage out = image;
        for (int fn : order) {
            out = switch (fn) {
                case 0 -> brightness > 0 ? PilOps.brightness(out, b) : out;
                case 1 -> contrast > 0 ? PilOps.contrast(out, c) : out;
                case 2 -> saturation > 0 ? PilOps.color(out, s) : out;
                default -> hue > 0 ? PilOps.hue(out, h) : out;
            };
        }
        return out;
    }

    private static double factor(double x, SplittableRandom random) {
        if (x <= 0) {
            return 1.0;
        }
        double lo = Math.max(0, 1 - x);
        return lo + (1 + x - lo) * random.nextDouble();
    }
}
