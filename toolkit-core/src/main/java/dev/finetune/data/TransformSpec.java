package dev.finetune.data;

import dev.finetune.ConfigException;
import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * The torchvision-style preprocessing of every image: what the network sees in training and in evaluation.
 *
 * <p>Evaluation is {@code Resize(resizeSize) + CenterCrop(imageSize) + ToTensor + Normalize(mean, std)}. Training is
 * {@code RandomResizedCrop(imageSize)} (or the evaluation resize and crop when {@code randomResizedCrop} is off),
 * then {@code RandomHorizontalFlip} if {@code horizontalFlip}, then {@code ToTensor + Normalize}. Both take the
 * {@link RgbImage} of {@code PIL.Image.open(f).convert("RGB")} and give a float32 CHW array equal to torchvision
 * 0.14's on that PIL image, bit for bit: the resizes are Pillow's bilinear on uint8 ({@link PilTransforms}).
 *
 * @param imageSize side of the square network input, default 224
 * @param resizeSize shorter side after the evaluation resize, before the centre crop; default 256
 * @param randomResizedCrop train with torchvision's random resized crop (scale 0.08-1, ratio 3/4-4/3)
 * @param horizontalFlip train with random left-right mirroring
 * @param mean per-channel mean (RGB) subtracted after scaling to [0, 1]; default ImageNet's
 * @param std per-channel standard deviation (RGB) divided by; default ImageNet's
 * @param interpolation the filter of every resize (torchvision's default bilinear, or bicubic)
 * @param autoAugment TrivialAugmentWide or RandAugment after the crop and flip in training, or null
 * @param randomErase torchvision's {@code RandomErasing(p)} on the training tensor (value 0), 0 for off
 * @param colorJitter torchvision's ColorJitter after the crop and flip in training, or null
 * @param cropScale the random resized crop's area range (torchvision's {@code scale}); null for its default (0.08, 1)
 */
public record TransformSpec(int imageSize, int resizeSize, boolean randomResizedCrop, boolean horizontalFlip,
        float[] mean, float[] std, Interpolation interpolation, AutoAugment autoAugment, double randomErase,
        ColorJitter colorJitter, SeededRandomResizedCrop.Scale cropScale) {

    private static final float[] IMAGENET_MEAN = {0.485f, 0.456f, 0.406f};
    private static final float[] IMAGENET_STD = {0.229f, 0.224f, 0.225f};

    /** Checks the values and copies the arrays, so a record cannot change after construction. */
    public TransformSpec {
        if (imageSize < 8) {
            throw new ConfigException("", "image size must be >= 8, found " + imageSize);
        }
        if (resizeSize < imageSize) {
            throw new ConfigException("", "resize size must be >= image size " + imageSize + " (the centre crop is taken from the resized"
                            + " image), found " + resizeSize);
        }
        mean = checkChannels("mean", mean, false);
        std = checkChannels("std", std, true);
        interpolation = interpolation == null ? Interpolation.BILINEAR : interpolation;
        cropScale = cropScale == null ? SeededRandomResizedCrop.DEFAULT_SCALE : cropScale;
        if (!(randomErase >= 0 && randomErase <= 1)) {
            throw new IllegalArgumentException("random erasing probability must be in [0, 1], found " + randomErase);
        }
    }

    /** Without AutoAugment and random erasing. */
    public TransformSpec(int imageSize, int resizeSize, boolean randomResizedCrop, boolean horizontalFlip, float[] mean,
            float[] std, Interpolation interpolation) {
        this(imageSize, resizeSize, randomResizedCrop, horizontalFlip, mean, std, interpolation, null, 0, null);
    }

    /** With torchvision's default crop scale (0.08, 1). */
    public TransformSpec(int imageSize, int resizeSize, boolean randomResizedCrop, boolean horizontalFlip, float[] mean,
            float[] std, Interpolation interpolation, AutoAugment autoAugment, double randomErase,
            ColorJitter colorJitter) {
        this(imageSize, resizeSize, randomResizedCrop, horizontalFlip, mean, std, interpolation, autoAugment,
                randomErase, colorJitter, null);
    }

    /** Without ColorJitter. */
    public TransformSpec(int imageSize, int resizeSize, boolean randomResizedCrop, boolean horizontalFlip, float[] mean,
            float[] std, Interpolation interpolation, AutoAugment autoAugment, double randomErase) {
        this(imageSize, resizeSize, randomResizedCrop, horizontalFlip, mean, std, interpolation, autoAugment,
                randomErase, null);
    }

    /** With torchvision's default bilinear interpolation. */
    public TransformSpec(
            int imageSize, int resizeSize, boolean randomResizedCrop, boolean horizontalFlip, float[] mean, float[] std) {
        this(imageSize, resizeSize, randomResizedCrop, horizontalFlip, mean, std, Interpolation.BILINEAR);
    }

    /** torchvision's ImageNet recipe: 224 input, resize 256, random resized crop and flip, ImageNet mean/std. */
    public static TransformSpec defaults() {
        return new TransformSpec(224, 256, true, true, IMAGENET_MEAN, IMAGENET_STD);
    }

    /** The same spec with another input size; the evaluation resize keeps torchvision's 256/224 proportion. */
    public TransformSpec withImageSize(int size) {
        return new TransformSpec(size, (int) Math.round(size * 256.0 / 224.0), randomResizedCrop, horizontalFlip, mean,
                std, interpolation, autoAugment, randomErase, colorJitter, cropScale);
    }

    /** The same spec with augmentation switched on or off. */
    public TransformSpec withAugmentation(boolean randomResizedCrop, boolean horizontalFlip) {
        return new TransformSpec(imageSize, resizeSize, randomResizedCrop, horizontalFlip, mean, std, interpolation,
                autoAugment, randomErase, colorJitter, cropScale);
    }

    @Override
    public float[] mean() {
        return mean.clone();
    }

    @Override
    public float[] std() {
        return std.clone();
    }

    /** Size of one preprocessed sample: {@code 3 * imageSize * imageSize} floats. */
    public int tensorLength() {
        return 3 * imageSize * imageSize;
    }

    /**
     * The evaluation image before {@code ToTensor}: {@code CenterCrop(imageSize)(Resize(resizeSize)(image))}, uint8,
     * always {@code imageSize x imageSize}.
     */
    public RgbImage evalImage(RgbImage image) {
        return PilTransforms.resizeAndCenterCrop(image, resizeSize, imageSize, interpolation);
    }

    /**
     * The training image of one sample of one epoch, before {@code ToTensor}: {@code RandomResizedCrop(imageSize)}
     * (or the evaluation resize and crop when {@code randomResizedCrop} is off), then {@code RandomHorizontalFlip}
     * if {@code horizontalFlip}. The crop and the flip are drawn from a generator seeded by
     * {@code (seed, epoch, sampleIndex)} alone, so a run repeated with the same seed sees the same augmentations
     * whatever the number of loader threads, and each epoch sees new ones.
     */
    public RgbImage trainImage(RgbImage image, long seed, int epoch, int sampleIndex) {
        return trainImage(image, sampleRandom(seed, epoch, sampleIndex));
    }

    private static SplittableRandom sampleRandom(long seed, int epoch, int sampleIndex) {
        return new SplittableRandom(mix(mix(mix(seed) ^ epoch) ^ sampleIndex));
    }

    /** Crop, flip, ColorJitter and AutoAugment (each when on), drawing in that order from {@code random}. */
    private RgbImage trainImage(RgbImage image, SplittableRandom random) {
        RgbImage out = randomResizedCrop
                ? new SeededRandomResizedCrop(imageSize, random, interpolation, cropScale).apply(image)
                : evalImage(image);
        out = horizontalFlip ? new SeededHorizontalFlip(random).apply(out) : out;
        out = colorJitter == null ? out : colorJitter.apply(out, random);
        return autoAugment == null ? out : autoAugment.apply(out, random);
    }

    /** {@code Normalize(mean, std)(ToTensor()(image))} into {@code out[offset ...]}, CHW float32. */
    public void toTensor(RgbImage image, float[] out, int offset) {
        PilTransforms.toTensor(image, mean, std, out, offset);
    }

    /** The evaluation tensor {@code (3, imageSize, imageSize)}, exactly torchvision's; see {@link #evalImage}. */
    public float[] evalTensor(RgbImage image) {
        float[] out = new float[tensorLength()];
        toTensor(evalImage(image), out, 0);
        return out;
    }

    /** The training tensor of one sample of one epoch; see {@link #trainImage}. */
    public float[] trainTensor(RgbImage image, long seed, int epoch, int sampleIndex) {
        SplittableRandom random = sampleRandom(seed, epoch, sampleIndex);
        float[] out = new float[tensorLength()];
        toTensor(trainImage(image, random), out, 0);
        if (randomErase > 0) {
            randomErasing(out, random);
        }
        return out;
    }

    /**
     * torchvision's {@code RandomErasing(p, scale=(0.02, 0.33), ratio=(0.3, 3.3), value=0)} on a (3, S, S) tensor:
     * with probability p, up to ten tries for a box of area share U(0.02, 0.33) and aspect exp(U(log 0.3, log 3.3))
     * (sides rounded half to even, as Python's round) that fits strictly inside, at a uniform position; zeroed.
     */
    private void randomErasing(float[] t, SplittableRandom random) {
        if (!(random.nextDouble() < randomErase)) {
            return;
        }
        int side = imageSize;
        double area = (double) side * side;
        double logLo = Math.log(0.3);
        double logHi = Math.log(3.3);
        for (int attempt = 0; attempt < 10; attempt++) {
            double eraseArea = area * (0.02 + (0.33 - 0.02) * random.nextDouble());
            double aspect = Math.exp(logLo + (logHi - logLo) * random.nextDouble());
            int h = (int) Math.rint(Math.sqrt(eraseArea * aspect));
            int w = (int) Math.rint(Math.sqrt(eraseArea / aspect));
            if (!(h < side && w < side)) {
                continue;
            }
            int top = random.nextInt(side - h + 1);
            int left = random.nextInt(side - w + 1);
            for (int c = 0; c < 3; c++) {
                for (int y = top; y < top + h; y++) {
                    java.util.Arrays.fill(t, (c * side + y) * side + left, (c * side + y) * side + left + w, 0f);
                }
            }
            return;
        }
    }

    /**
     * The torchvision code that gives the evaluation tensor of a file, bit for bit:
     * {@code transforms.Compose([transforms.Resize(R), transforms.CenterCrop(C), transforms.ToTensor(),
     * transforms.Normalize(mean=[...], std=[...])])(PIL.Image.open(f).convert("RGB"))}. The numbers are written
     * so that Python reads back exactly the float32 values used here.
     */
    public String torchvisionEvalRecipe() {
        String filter = interpolation == Interpolation.BILINEAR ? ""
                : ", interpolation=transforms.InterpolationMode." + interpolation.name();
        return "transforms.Compose([transforms.Resize(" + resizeSize + filter + "), transforms.CenterCrop(" + imageSize
                + "), transforms.ToTensor(), transforms.Normalize(mean=" + pythonFloats(mean) + ", std="
                + pythonFloats(std) + ")])(PIL.Image.open(f).convert(\"RGB\"))";
    }

    /** Decimal text that Python parses to a double which rounds back to exactly this float32 value. */
    static String pythonFloats(float[] values) {
        StringBuilder text = new StringBuilder("[");
        for (int i = 0; i < values.length; i++) {
            String s = Float.toString(values[i]);
            // Python: text -> nearest double -> torch rounds to float32; the short form can round differently.
            if ((float) Double.parseDouble(s) != values[i] || s.contains("E")) {
                s = new java.math.BigDecimal(values[i]).toPlainString();
            }
            text.append(i == 0 ? "" : ", ").append(s);
        }
        return text.append("]").toString();
    }

    /** SplitMix64's finaliser: neighbouring (seed, epoch, index) triples get unrelated generator seeds. */
    private static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    private static float[] checkChannels(String name, float[] values, boolean positive) {
        if (values == null || values.length != 3) {
            throw new ConfigException("", name + " must have 3 values (R, G, B), found " + (values == null ? "none" : Arrays.toString(values)));
        }
        for (float v : values) {
            if (!Float.isFinite(v) || (positive && v <= 0)) {
                throw new ConfigException("", name + " values must be finite" + (positive ? " and > 0" : "") + ", found "
                                + Arrays.toString(values));
            }
        }
        return values.clone();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof TransformSpec t
                && imageSize == t.imageSize
                && resizeSize == t.resizeSize
                && randomResizedCrop == t.randomResizedCrop
                && horizontalFlip == t.horizontalFlip
                && Arrays.equals(mean, t.mean)
                && Arrays.equals(std, t.std)
                && interpolation == t.interpolation
                && cropScale.equals(t.cropScale);
    }

    @Override
    public int hashCode() {
        int h = Integer.hashCode(imageSize);
        h = 31 * h + Integer.hashCode(resizeSize);
        h = 31 * h + Boolean.hashCode(randomResizedCrop);
        h = 31 * h + Boolean.hashCode(horizontalFlip);
        h = 31 * h + Arrays.hashCode(mean);
        return 31 * h + Arrays.hashCode(std);
    }

    @Override
    public String toString() {
        return "TransformSpec[imageSize=" + imageSize + ", resizeSize=" + resizeSize + ", randomResizedCrop="
                + randomResizedCrop + ", horizontalFlip=" + horizontalFlip + ", mean=" + Arrays.toString(mean)
                + ", std=" + Arrays.toString(std)
                // Only when not the default, so that keys written before (feature stores) stay valid.
                + (interpolation == Interpolation.BILINEAR ? "" : ", interpolation=" + interpolation.configName())
                + "]";
    }
}
