package dev.finetune.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.finetune.ErrorKind;
import dev.finetune.FinetuneException;
import java.util.Arrays;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class TransformSpecTest {
    /** An RGB image whose red channel is the column, green the row, blue 0. */
    static RgbImage gradient(int height, int width) {
        byte[] data = new byte[height * width * 3];
        for (int y = 0; y < height; y++) {
            for (int x = 0; x < width; x++) {
                data[(y * width + x) * 3] = (byte) x;
                data[(y * width + x) * 3 + 1] = (byte) y;
            }
        }
        return RgbImage.of(width, height, data);
    }

    /** Value of channel c at (y, x) of a CHW tensor of side `size`. */
    private static float at(float[] chw, int size, int c, int y, int x) {
        return chw[(c * size + y) * size + x];
    }

    @Test
    void defaultsAreTorchvisionsImageNetRecipe() {
        TransformSpec spec = TransformSpec.defaults();
        assertEquals(224, spec.imageSize());
        assertEquals(256, spec.resizeSize());
        assertTrue(spec.randomResizedCrop());
        assertTrue(spec.horizontalFlip());
        assertArrayEquals(new float[] {0.485f, 0.456f, 0.406f}, spec.mean());
        assertArrayEquals(new float[] {0.229f, 0.224f, 0.225f}, spec.std());
        assertEquals(spec, TransformSpec.defaults());
        assertEquals(spec.hashCode(), TransformSpec.defaults().hashCode());
        assertEquals(new TransformSpec(112, 128, true, true, spec.mean(), spec.std()), spec.withImageSize(112));
    }

    @Test
    void isImmutable() {
        float[] mean = {0.5f, 0.5f, 0.5f};
        TransformSpec spec = new TransformSpec(32, 32, false, false, mean, new float[] {1, 1, 1});
        mean[0] = 9;
        spec.mean()[1] = 9;
        assertArrayEquals(new float[] {0.5f, 0.5f, 0.5f}, spec.mean());
    }

    @Test
    void invalidValuesAreConfigErrors() {
        float[] three = {1, 1, 1};
        FinetuneException e = assertThrows(FinetuneException.class,
                () -> new TransformSpec(4, 256, true, true, three, three));
        assertEquals(ErrorKind.CONFIG, e.kind());
        assertEquals("image size must be >= 8, found 4", e.getMessage());
        e = assertThrows(FinetuneException.class, () -> new TransformSpec(224, 200, true, true, three, three));
        assertEquals(
                "resize size must be >= image size 224 (the centre crop is taken from the resized image), found 200",
                e.getMessage());
        e = assertThrows(FinetuneException.class,
                () -> new TransformSpec(224, 256, true, true, new float[] {1, 1}, three));
        assertEquals("mean must have 3 values (R, G, B), found [1.0, 1.0]", e.getMessage());
        e = assertThrows(FinetuneException.class,
                () -> new TransformSpec(224, 256, true, true, three, new float[] {1, 0, 1}));
        assertEquals("std values must be finite and > 0, found [1.0, 0.0, 1.0]", e.getMessage());
    }

    @Test
    void evalResizesShorterSideThenCropsCentreAndNormalises() {
        TransformSpec spec = new TransformSpec(16, 32, true, true, new float[] {0, 0, 0}, new float[] {1, 1, 1});
        // 64 high, 128 wide: shorter side 64 -> 32, so 32x64, centre 16x16 is rows 8..23, columns 24..39.
        float[] out = spec.evalTensor(gradient(64, 128));
        assertEquals(3 * 16 * 16, out.length);
        // Pillow's 2x bilinear downscale of a ramp (antialiased: weights 1/8, 3/8, 3/8, 1/8) gives 2c + 0.5,
        // rounded half up in its fixed-point arithmetic: 48.5 -> 49 and 16.5 -> 17, in uint8 before ToTensor.
        assertEquals(49 / 255f, at(out, 16, 0, 0, 0), 0f);
        assertEquals(17 / 255f, at(out, 16, 1, 0, 0), 0f);
        assertEquals(0f, at(out, 16, 2, 5, 5), 0f);
        assertEquals(PilTransforms.centerCrop(PilTransforms.resize(gradient(64, 128), 32), 16),
                spec.evalImage(gradient(64, 128)));
    }

    @Test
    void normalisesWithMeanAndStd() {
        TransformSpec spec = TransformSpec.defaults().withImageSize(8);
        byte[] white = new byte[20 * 20 * 3];
        Arrays.fill(white, (byte) 255);
        float[] out = spec.evalTensor(RgbImage.of(20, 20, white));
        float[] mean = spec.mean();
        float[] std = spec.std();
        for (int c = 0; c < 3; c++) {
            assertEquals((1f - mean[c]) / std[c], at(out, 8, c, 3, 3), 0f);
        }
    }

    @Test
    void tinyFashionMnistImagesAreUpscaledToTheInputSize() {
        assertEquals(3 * 224 * 224, TransformSpec.defaults().evalTensor(gradient(28, 28)).length);
        RgbImage train = TransformSpec.defaults().trainImage(gradient(28, 28), 1, 0, 0);
        assertEquals(224, train.width());
        assertEquals(224, train.height());
    }

    @Test
    void oddSizesComeOutExactlyCropSized() {
        // 29x28 with resize = crop = 32: Resize gives 33x32, CenterCrop takes columns round(0.5) = 0 .. 31.
        TransformSpec spec = new TransformSpec(32, 32, false, false, new float[] {0, 0, 0}, new float[] {1, 1, 1});
        RgbImage out = spec.evalImage(gradient(28, 29));
        assertEquals(32, out.width());
        assertEquals(32, out.height());
        assertEquals(3 * 32 * 32, spec.evalTensor(gradient(28, 29)).length);
        for (int[] hw : new int[][] {{28, 29}, {29, 28}, {31, 32}, {300, 15}, {15, 300}, {33, 33}}) {
            RgbImage train = spec.withAugmentation(true, true).trainImage(gradient(hw[0], hw[1]), 3, 1, 4);
            assertEquals(32, train.width(), Arrays.toString(hw));
            assertEquals(32, train.height(), Arrays.toString(hw));
            assertEquals(32, spec.evalImage(gradient(hw[0], hw[1])).width(), Arrays.toString(hw));
        }
    }

    @Test
    void trainAugmentationDependsOnlyOnSeedEpochAndSample() {
        TransformSpec spec = TransformSpec.defaults().withImageSize(32);
        RgbImage image = gradient(60, 90);
        float[] a = spec.trainTensor(image, 7, 3, 11);
        float[] b = spec.trainTensor(image, 7, 3, 11);
        float[] otherEpoch = spec.trainTensor(image, 7, 4, 11);
        float[] otherSample = spec.trainTensor(image, 7, 3, 12);
        assertEquals(3 * 32 * 32, a.length);
        assertArrayEquals(a, b, 0f);
        assertFalse(Arrays.equals(a, otherEpoch));
        assertFalse(Arrays.equals(a, otherSample));
    }

    @Test
    void randomResizedCropIsTorchvisionsResizedCropOfTheSampledBox() {
        RgbImage image = gradient(60, 90);
        int[] box = SeededRandomResizedCrop.sampleBox(60, 90, new SplittableRandom(42));
        RgbImage expected = PilTransforms.resizedCrop(image, box[0], box[1], box[2], box[3], 24);
        assertEquals(expected, new SeededRandomResizedCrop(24, new SplittableRandom(42)).apply(image));
    }

    @Test
    void sidecarRecipeIsTheTorchvisionCodeWithExactFloats() {
        assertEquals("transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224), transforms.ToTensor(),"
                        + " transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])])"
                        + "(PIL.Image.open(f).convert(\"RGB\"))",
                TransformSpec.defaults().torchvisionEvalRecipe());
        for (float f : new float[] {0.1f, 1e-8f, 0.33333334f, 123456.79f, 0.5f}) {
            String text = TransformSpec.pythonFloats(new float[] {f});
            assertEquals(f, (float) Double.parseDouble(text.substring(1, text.length() - 1)), 0f, text);
        }
    }

    @Test
    void randomCropBoxesFollowTorchvisionBounds() {
        SplittableRandom random = new SplittableRandom(5);
        double minFraction = 1;
        double maxFraction = 0;
        for (int i = 0; i < 2000; i++) {
            int[] box = SeededRandomResizedCrop.sampleBox(100, 150, random);
            int top = box[0];
            int left = box[1];
            int h = box[2];
            int w = box[3];
            assertTrue(top >= 0 && left >= 0 && h > 0 && w > 0 && top + h <= 100 && left + w <= 150);
            double ratio = (double) w / h;
            assertTrue(ratio > 0.70 && ratio < 1.40, "ratio " + ratio);
            double fraction = (double) w * h / (100 * 150);
            minFraction = Math.min(minFraction, fraction);
            maxFraction = Math.max(maxFraction, fraction);
        }
        assertTrue(minFraction < 0.12, "smallest area fraction " + minFraction);
        // The largest box of ratio <= 4/3 in a 100x150 image covers 100x133, 0.887 of it.
        assertTrue(maxFraction > 0.8 && maxFraction <= 0.887, "largest area fraction " + maxFraction);
    }

    @Test
    void cropScaleBoundsTheAreaFraction() {
        SeededRandomResizedCrop.Scale scale = new SeededRandomResizedCrop.Scale(0.5, 0.75);
        SplittableRandom random = new SplittableRandom(9);
        double minFraction = 1;
        double maxFraction = 0;
        for (int i = 0; i < 2000; i++) {
            int[] box = SeededRandomResizedCrop.sampleBox(120, 120, random, scale);
            double fraction = (double) box[2] * box[3] / (120 * 120);
            minFraction = Math.min(minFraction, fraction);
            maxFraction = Math.max(maxFraction, fraction);
        }
        // Rounding w and h to whole pixels moves the fraction by at most ~2 pixels per side.
        assertTrue(minFraction >= 0.48 && minFraction < 0.52, "smallest area fraction " + minFraction);
        assertTrue(maxFraction > 0.72 && maxFraction <= 0.77, "largest area fraction " + maxFraction);
        // [1, 1] on a square image: every try needs ratio exactly 1, so torchvision's fallback (the whole image).
        assertArrayEquals(new int[] {0, 0, 40, 40}, SeededRandomResizedCrop.sampleBox(40, 40, new SplittableRandom(3),
                new SeededRandomResizedCrop.Scale(1, 1)));
        // The default keeps the draws (and so every earlier run's augmentations) unchanged.
        assertArrayEquals(SeededRandomResizedCrop.sampleBox(60, 90, new SplittableRandom(42)),
                SeededRandomResizedCrop.sampleBox(60, 90, new SplittableRandom(42), SeededRandomResizedCrop.DEFAULT_SCALE));
        assertThrows(IllegalArgumentException.class, () -> new SeededRandomResizedCrop.Scale(0, 1));
        assertThrows(IllegalArgumentException.class, () -> new SeededRandomResizedCrop.Scale(0.6, 0.5));
    }

    @Test
    void veryThinImagesFallBackToACentreCropOfAllowedRatio() {
        // 4 high, 400 wide: no box with ratio <= 4/3 covers >= 8% of it, so torchvision's fallback applies.
        int[] box = SeededRandomResizedCrop.sampleBox(4, 400, new SplittableRandom(1));
        assertArrayEquals(new int[] {0, (400 - 5) / 2, 4, 5}, box);
        RgbImage out = new SeededRandomResizedCrop(8, new SplittableRandom(1)).apply(gradient(3, 400));
        assertEquals(8, out.width());
        assertEquals(8, out.height());
    }

    @Test
    void flipMirrorsLeftRightForAboutHalfTheSamples() {
        RgbImage image = gradient(2, 5);
        RgbImage mirrored = PilTransforms.hflip(image);
        int flips = 0;
        for (int i = 0; i < 200; i++) {
            RgbImage out = new SeededHorizontalFlip(new SplittableRandom(i)).apply(image);
            if (out.equals(mirrored)) {
                flips++;
            } else {
                assertEquals(image, out);
            }
        }
        assertTrue(flips > 70 && flips < 130, "flipped " + flips + " of 200");
        assertEquals(4, mirrored.get(0, 0, 0));
        assertNotEquals(image, mirrored);
    }
}
