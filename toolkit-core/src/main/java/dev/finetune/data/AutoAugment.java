package dev.finetune.data;

import java.util.List;
import java.util.SplittableRandom;

/**
 * torchvision 0.14's {@code TrivialAugmentWide()} and {@code RandAugment(num_ops, magnitude)} on the uint8 image
 * (after the random resized crop and flip, before {@code ToTensor}, as torchvision's classification reference orders
 * them), with its op sets, magnitude tables (31 bins), signs and NEAREST interpolation; every op is Pillow's
 * ({@link PilOps}). Draws come from the sample's own generator, seeded by (seed, epoch, sample), so a run repeats and
 * resumes exactly; the draws are not torch's (its generator is not reproduced), the distribution is.
 *
 * @param policy TRIVIAL_WIDE or RAND
 * @param numOps RandAugment's ops per image (TrivialAugment applies one)
 * @param magnitude RandAugment's magnitude bin, 0-30 (TrivialAugment draws one per image)
 */
public record AutoAugment(Policy policy, int numOps, int magnitude) {
    /** The two policies, by their names in torchvision's classification reference ({@code ta_wide}, {@code ra}). */
    public enum Policy {
        TRIVIAL_WIDE("ta_wide"), RAND("ra");

        private final String configName;

        Policy(String configName) {
            this.configName = configName;
        }

        public String configName() {
            return configName;
        }
    }

    static final int BINS = 31;

    /** The ops, in torchvision's order of its augmentation space. */
    enum Op {
        IDENTITY, SHEAR_X, SHEAR_Y, TRANSLATE_X, TRANSLATE_Y, ROTATE, BRIGHTNESS, COLOR, CONTRAST, SHARPNESS,
        POSTERIZE, SOLARIZE, AUTO_CONTRAST, EQUALIZE
    }

    private static final List<Op> OPS = List.of(Op.values());

    public AutoAugment {
        if (policy == null) {
            throw new IllegalArgumentException("an auto-augment policy is required");
        }
        if (numOps < 1 || numOps > 16) {
            throw new IllegalArgumentException("num_ops must be 1 to 16, found " + numOps);
        }
        if (magnitude < 0 || magnitude >= BINS) {
            throw new IllegalArgumentException("magnitude must be 0 to " + (BINS - 1) + ", found " + magnitude);
        }
    }

    /** TrivialAugmentWide with torchvision's defaults. */
    public static AutoAugment trivialWide() {
        return new AutoAugment(Policy.TRIVIAL_WIDE, 1, 0);
    }

    /** RandAugment with torchvision's defaults: 2 ops at magnitude 9. */
    public static AutoAugment rand(int numOps, int magnitude) {
        return new AutoAugment(Policy.RAND, numOps, magnitude);
    }

    /** The augmented image, drawing from {@code random}. */
    public RgbImage apply(RgbImage image, SplittableRandom random) {
        RgbImage out = image;
        int n = policy == Policy.TRIVIAL_WIDE ? 1 : numOps;
        for (int k = 0; k < n; k++) {
            Op op = OPS.get(random.nextInt(OPS.size()));
            double m = 0.0;
            if (hasMagnitudes(op)) {
                int bin = policy == Policy.TRIVIAL_WIDE ? random.nextInt(BINS) : magnitude;
                m = magnitude(op, bin, out.width(), out.height());
            }
            if (signed(op) && random.nextBoolean()) {
                m = -m;
            }
            out = apply(op, out, m);
        }
        return out;
    }

    private static boolean hasMagnitudes(Op op) {
        return op != Op.IDENTITY && op != Op.AUTO_CONTRAST && op != Op.EQUALIZE;
    }

    private static boolean signed(Op op) {
        return switch (op) {
            case SHEAR_X, SHEAR_Y, TRANSLATE_X, TRANSLATE_Y, ROTATE, BRIGHTNESS, COLOR, CONTRAST, SHARPNESS -> true;
            default -> false;
        };
    }

    /** The magnitude of {@code op} at {@code bin}: torchvision's table for this policy, as float32 values. */
    double magnitude(Op op, int bin, int width, int height) {
        boolean ta = policy == Policy.TRIVIAL_WIDE;
        return switch (op) {
            case SHEAR_X, SHEAR_Y -> linspace(0f, ta ? 0.99f : 0.3f, bin);
            case TRANSLATE_X -> linspace(0f, ta ? 32.0f : (float) (150.0 / 331.0 * width), bin);
            case TRANSLATE_Y -> linspace(0f, ta ? 32.0f : (float) (150.0 / 331.0 * height), bin);
            case ROTATE -> linspace(0f, ta ? 135.0f : 30.0f, bin);
            case BRIGHTNESS, COLOR, CONTRAST, SHARPNESS -> linspace(0f, ta ? 0.99f : 0.9f, bin);
            // 8 − round(i / ((bins − 1) / 6)) for TrivialAugment, / 4 for RandAugment (float32, ties to even).
            case POSTERIZE -> 8 - (int) Math.rint((float) bin / (float) ((BINS - 1) / (ta ? 6.0 : 4.0)));
            case SOLARIZE -> linspace(255.0f, 0.0f, bin);
            default -> 0.0;
        };
    }

    /** {@code float(torch.linspace(start, end, 31)[i])}: ATen's float32 kernel, from both ends towards the middle. */
    static double linspace(float start, float end, int i) {
        float step = (end - start) / (BINS - 1);
        return i < BINS / 2 ? start + step * i : end - step * (BINS - i - 1);
    }

    /** torchvision's {@code _apply_op} for a PIL image, NEAREST interpolation, fill 0. */
    static RgbImage apply(Op op, RgbImage img, double m) {
        return switch (op) {
            case IDENTITY -> img;
            case SHEAR_X -> PilOps.shearX(img, m);
            case SHEAR_Y -> PilOps.shearY(img, m);
            case TRANSLATE_X -> PilOps.translate(img, (int) m, 0);
            case TRANSLATE_Y -> PilOps.translate(img, 0, (int) m);
            case ROTATE -> PilOps.rotate(img, m);
            case BRIGHTNESS -> PilOps.brightness(img, 1.0 + m);
            case COLOR -> PilOps.color(img, 1.0 + m);
            case CONTRAST -> PilOps.contrast(img, 1.0 + m);
            case SHARPNESS -> PilOps.sharpness(img, 1.0 + m);
            case POSTERIZE -> PilOps.posterize(img, (int) m);
            case SOLARIZE -> PilOps.solarize(img, m);
            case AUTO_CONTRAST -> PilOps.autocontrast(img);
            case EQUALIZE -> PilOps.equalize(img);
        };
    }
}
