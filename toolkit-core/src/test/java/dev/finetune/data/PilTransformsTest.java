package dev.finetune.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;

import org.junit.jupiter.api.Test;

/**
 * torchvision's rules that decide shapes and positions, checked on small cases worked out by hand from torchvision
 * 0.14's source ({@code _compute_resized_output_size}, {@code center_crop}); {@link PreprocessingParityTest} checks the
 * pixels against torchvision itself.
 */
class PilTransformsTest {
    /** Each pixel's red value is its index y * width + x (mod 256), green 1, blue 2. */
    private static RgbImage numbered(int width, int height) {
        byte[] data = new byte[3 * width * height];
        for (int i = 0; i < width * height; i++) {
            data[3 * i] = (byte) i;
            data[3 * i + 1] = 1;
            data[3 * i + 2] = 2;
        }
        return RgbImage.of(width, height, data);
    }

    @Test
    void resizeKeepsTheShorterSideRuleAndTruncatesTheLongerSide() {
        assertArrayEquals(new int[] {32, 33}, PilTransforms.resizedSize(28, 29, 32)); // 29x28: 32 * 29 / 28 = 33.1
        assertArrayEquals(new int[] {256, 383}, PilTransforms.resizedSize(427, 640, 256)); // 383.4
        assertArrayEquals(new int[] {5120, 256}, PilTransforms.resizedSize(300, 15, 256));
        assertArrayEquals(new int[] {256, 341}, PilTransforms.resizedSize(375, 500, 256)); // 341.33
        assertArrayEquals(new int[] {7, 7}, PilTransforms.resizedSize(28, 28, 7));
        assertArrayEquals(new int[] {64, 64}, PilTransforms.resizedSize(10, 10, 64));
        // A size that already fits is returned as it is, as torchvision does.
        RgbImage image = numbered(29, 28);
        assertSame(image, PilTransforms.resize(image, 28));
    }

    @Test
    void centerCropRoundsHalfToEvenLikePython() {
        // (H - c) / 2 = 0.5 -> 0, 1.5 -> 2, 2.5 -> 2 (Python 3 round), never DJL's (H - c) // 2 or a skipped crop.
        assertEquals(numbered(29, 28).get(0, 0, 0), PilTransforms.centerCrop(numbered(29, 28), 28).get(0, 0, 0));
        RgbImage crop = PilTransforms.centerCrop(numbered(8, 8), 5); // offset round(1.5) = 2
        assertEquals(2 * 8 + 2, crop.get(0, 0, 0));
        crop = PilTransforms.centerCrop(numbered(9, 9), 4); // offset round(2.5) = 2
        assertEquals(2 * 9 + 2, crop.get(0, 0, 0));
        crop = PilTransforms.centerCrop(numbered(33, 32), 32); // offset round(0.5) = 0
        assertEquals(0, crop.get(0, 0, 0));
        assertEquals(32, crop.width());
    }

    @Test
    void centerCropPadsWithZerosWhenTheImageIsSmaller() {
        // 3 wide, 2 high, crop 6: left pad (6 - 3) // 2 = 1, right 2; top pad (6 - 2) // 2 = 2, bottom 2.
        RgbImage crop = PilTransforms.centerCrop(numbered(3, 2), 6);
        assertEquals(6, crop.width());
        assertEquals(6, crop.height());
        assertEquals(0, crop.get(0, 2, 1)); // padding column
        assertEquals(1, crop.get(1, 2, 1)); // first image column
        assertEquals(4, crop.get(2, 3, 0)); // pixel (1, 1) of the image: index 1 * 3 + 1
        assertEquals(0, crop.get(4, 3, 1)); // right padding
        assertEquals(0, crop.get(2, 1, 1)); // top padding
        // Wider than the crop but lower: pad the height only, (3 - 2) // 2 = 0 on top and 1 below; crop the width
        // at round((5 - 3) / 2) = 1.
        crop = PilTransforms.centerCrop(numbered(5, 2), 3);
        assertEquals(1, crop.get(0, 0, 0)); // image (1, 0)
        assertEquals(8, crop.get(2, 1, 0)); // image (3, 1)
        assertEquals(0, crop.get(0, 2, 1)); // bottom padding
    }

    @Test
    void resizeAndCenterCropInOneGoEqualsTheTwoSteps() {
        java.util.SplittableRandom random = new java.util.SplittableRandom(11);
        for (int i = 0; i < 300; i++) {
            int width = 1 + random.nextInt(90);
            int height = 1 + random.nextInt(90);
            byte[] data = new byte[3 * width * height];
            for (int j = 0; j < data.length; j++) {
                data[j] = (byte) random.nextInt(256);
            }
            RgbImage image = RgbImage.of(width, height, data);
            int n = 1 + random.nextInt(80);
            int size = 1 + random.nextInt(n + 5); // sometimes larger than the resized image: padding
            String what = width + "x" + height + " Resize(" + n + ") CenterCrop(" + size + ")";
            assertEquals(PilTransforms.centerCrop(PilTransforms.resize(image, n), size),
                    PilTransforms.resizeAndCenterCrop(image, n, size), what);
            int top = random.nextInt(height);
            int left = random.nextInt(width);
            int h = 1 + random.nextInt(height - top);
            int w = 1 + random.nextInt(width - left);
            int out = 1 + random.nextInt(40);
            assertEquals(PilTransforms.resize(PilTransforms.crop(image, top, left, h, w), out, out),
                    PilTransforms.resizedCrop(image, top, left, h, w, out), what + " resized_crop");
        }
    }

    @Test
    void toTensorAndNormalizeRoundEveryStepToFloat32() {
        RgbImage image = RgbImage.of(1, 1, new byte[] {(byte) 200, 0, (byte) 255});
        float[] mean = {0.485f, 0.456f, 0.406f};
        float[] std = {0.229f, 0.224f, 0.225f};
        float[] out = PilTransforms.toTensor(image, mean, std);
        assertEquals(((200 / 255f) - 0.485f) / 0.229f, out[0], 0f);
        assertEquals((0f - 0.456f) / 0.224f, out[1], 0f);
        assertEquals((1f - 0.406f) / 0.225f, out[2], 0f);
    }

    @Test
    void cropOutsideTheImageIsBlackAndFlipMirrors() {
        RgbImage crop = PilTransforms.crop(numbered(4, 3), -1, 2, 3, 3);
        assertEquals(0, crop.get(0, 0, 1)); // row -1: outside
        assertEquals(2, crop.get(0, 1, 0)); // (2, 0)
        assertEquals(0, crop.get(2, 1, 1)); // column 4: outside
        RgbImage flipped = PilTransforms.hflip(numbered(4, 3));
        assertEquals(3, flipped.get(0, 0, 0));
        assertEquals(4, flipped.get(3, 1, 0));
    }
}
