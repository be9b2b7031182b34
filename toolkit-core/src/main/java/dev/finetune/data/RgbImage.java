package dev.finetune.data;

import java.util.Arrays;

/**
 * An 8-bit RGB image, rows top to bottom, pixels left to right, channels R, G, B interleaved (HWC uint8): what
 * {@code numpy.asarray(PIL.Image.open(f).convert("RGB"))} holds. Immutable: the pixel array is never handed out
 * (see {@link #toByteArray()}), so images can be shared between threads.
 */
public final class RgbImage {
    private final int width;
    private final int height;
    private final byte[] pixels;

    /** Takes ownership of {@code pixels}: callers in this package pass arrays nobody else holds. */
    RgbImage(int width, int height, byte[] pixels) {
        if (width < 1 || height < 1) {
            throw new IllegalArgumentException("image size must be positive, found " + width + "x" + height);
        }
        if (pixels.length != 3L * width * height) {
            throw new IllegalArgumentException(
                    "a " + width + "x" + height + " RGB image has " + 3L * width * height + " bytes, found "
                            + pixels.length);
        }
        this.width = width;
        this.height = height;
        this.pixels = pixels;
    }

    /** An image from HWC RGB bytes (copied). */
    public static RgbImage of(int width, int height, byte[] rgb) {
        return new RgbImage(width, height, rgb.clone());
    }

    /**
     * A grayscale image (PIL mode {@code "L"}) converted to RGB as PIL's {@code convert("RGB")} does: each value
     * repeated in the three channels.
     *
     * @param gray {@code width * height} values, row by row
     */
    public static RgbImage fromGray(int width, int height, byte[] gray) {
        if (gray.length != width * height) {
            throw new IllegalArgumentException(
                    "a " + width + "x" + height + " gray image has " + width * height + " bytes, found " + gray.length);
        }
        byte[] rgb = new byte[3 * gray.length];
        for (int i = 0, o = 0; i < gray.length; i++, o += 3) {
            byte v = gray[i];
            rgb[o] = v;
            rgb[o + 1] = v;
            rgb[o + 2] = v;
        }
        return new RgbImage(width, height, rgb);
    }

    public int width() {
        return width;
    }

    public int height() {
        return height;
    }

    /** Channel {@code c} (0 = R, 1 = G, 2 = B) of pixel (x, y), 0..255. */
    public int get(int x, int y, int c) {
        return pixels[(y * width + x) * 3 + c] & 0xFF;
    }

    /** A copy of the HWC bytes. */
    public byte[] toByteArray() {
        return pixels.clone();
    }

    /** The HWC bytes themselves, for this package's transforms; never modify them. */
    byte[] data() {
        return pixels;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof RgbImage other
                && width == other.width
                && height == other.height
                && Arrays.equals(pixels, other.pixels);
    }

    @Override
    public int hashCode() {
        return 31 * (31 * width + height) + Arrays.hashCode(pixels);
    }

    @Override
    public String toString() {
        return "RgbImage[" + width + "x" + height + "]";
    }
}
