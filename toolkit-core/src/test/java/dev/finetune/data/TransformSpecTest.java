package dev.finetune.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.translate.Pipeline;
import dev.finetune.ErrorKind;
import dev.finetune.FinetuneException;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

class TransformSpecTest {
    private NDManager manager;

    @BeforeEach
    void open() {
        manager = NDManager.newBaseManager();
    }

    @AfterEach
    void close() {
        manager.close();
    }

    /** An HWC uint8 image whose red channel is the column, green the row, blue 0. */
    private NDArray gradient(int height, int width) {
        byte[] data = new byte[height * width * 3];
        for (int y = 0; y < height; y++) {
            for (int x = 0; x < width; x++) {
                data[(y * width + x) * 3] = (byte) x;
                data[(y * width + x) * 3 + 1] = (byte) y;
            }
        }
        return manager.create(java.nio.ByteBuffer.wrap(data), new Shape(height, width, 3), DataType.UINT8);
    }

    private static NDArray run(Pipeline pipeline, NDArray hwc) {
        return pipeline.transform(new NDList(hwc)).singletonOrThrow();
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
        NDArray out = run(spec.evalPipeline(), gradient(64, 128));
        assertEquals(new Shape(3, 16, 16), out.getShape());
        assertEquals(DataType.FLOAT32, out.getDataType());
        // Bilinear 2x downscale of a ramp: output column c samples source 2c + 0.5.
        float red = out.getFloat(0, 0, 0) * 255f;
        float green = out.getFloat(1, 0, 0) * 255f;
        assertEquals(2 * 24 + 0.5f, red, 1e-3);
        assertEquals(2 * 8 + 0.5f, green, 1e-3);
        assertEquals(0f, out.getFloat(2, 5, 5), 0f);
    }

    @Test
    void normalisesWithMeanAndStd() {
        TransformSpec spec = TransformSpec.defaults().withImageSize(8);
        NDArray white = manager.full(new Shape(20, 20, 3), 255, DataType.UINT8);
        NDArray out = run(spec.evalPipeline(), white);
        float[] mean = spec.mean();
        float[] std = spec.std();
        for (int c = 0; c < 3; c++) {
            assertEquals((1 - mean[c]) / std[c], out.getFloat(c, 3, 3), 1e-5);
        }
    }

    @Test
    void tinyFashionMnistImagesAreUpscaledToTheInputSize() {
        NDArray out = run(TransformSpec.defaults().evalPipeline(), gradient(28, 28));
        assertEquals(new Shape(3, 224, 224), out.getShape());
        NDArray train = run(TransformSpec.defaults().trainPipeline(1, 0, 0), gradient(28, 28));
        assertEquals(new Shape(3, 224, 224), train.getShape());
    }

    @Test
    void trainAugmentationDependsOnlyOnSeedEpochAndSample() {
        TransformSpec spec = TransformSpec.defaults().withImageSize(32);
        NDArray image = gradient(60, 90);
        NDArray a = run(spec.trainPipeline(7, 3, 11), image);
        NDArray b = run(spec.trainPipeline(7, 3, 11), image);
        NDArray otherEpoch = run(spec.trainPipeline(7, 4, 11), image);
        NDArray otherSample = run(spec.trainPipeline(7, 3, 12), image);
        assertEquals(new Shape(3, 32, 32), a.getShape());
        assertTrue(a.contentEquals(b));
        assertFalse(a.contentEquals(otherEpoch));
        assertFalse(a.contentEquals(otherSample));
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
    void veryThinImagesFallBackToACentreCropOfAllowedRatio() {
        // 4 high, 400 wide: no box with ratio <= 4/3 covers >= 8% of it, so torchvision's fallback applies.
        int[] box = SeededRandomResizedCrop.sampleBox(4, 400, new SplittableRandom(1));
        assertArrayEquals(new int[] {0, (400 - 5) / 2, 4, 5}, box);
        NDArray out = new SeededRandomResizedCrop(8, new SplittableRandom(1)).transform(
                gradient(3, 400).toType(DataType.FLOAT32, false));
        assertEquals(new Shape(8, 8, 3), out.getShape());
    }

    @Test
    void flipMirrorsLeftRightForAboutHalfTheSamples() {
        NDArray image = gradient(2, 5).toType(DataType.FLOAT32, false);
        NDArray mirrored = image.flip(1);
        int flips = 0;
        for (int i = 0; i < 200; i++) {
            NDArray out = new SeededHorizontalFlip(new SplittableRandom(i)).transform(image);
            if (out.contentEquals(mirrored)) {
                flips++;
            } else {
                assertTrue(out.contentEquals(image));
            }
        }
        assertTrue(flips > 70 && flips < 130, "flipped " + flips + " of 200");
        assertNotEquals(0f, mirrored.getFloat(0, 0, 0));
    }
}
