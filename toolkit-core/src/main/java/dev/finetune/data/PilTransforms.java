package dev.finetune.data;

/**
 * torchvision 0.14's transforms on a PIL image, on {@link RgbImage}s, with torchvision's and Pillow's exact
 * arithmetic: {@code Resize(n)}, {@code CenterCrop(c)}, {@code F.resized_crop} (the pixels of
 * {@code RandomResizedCrop}), {@code F.hflip}, and {@code ToTensor + Normalize}. Results are bit-identical to
 * torchvision's (checked against Debian's torchvision by {@code PilTransformsParityTest}).
 */
public final class PilTransforms {
    private PilTransforms() {}

    /**
     * {@code transforms.Resize(n)}'s output size, torchvision's {@code _compute_resized_output_size}: the shorter side
     * becomes {@code n}, the longer {@code int(n * long / short)} (truncated; a square stays square).
     *
     * @return {height, width}
     */
    public static int[] resizedSize(int height, int width, int n) {
        if (n < 1) {
            throw new IllegalArgumentException("resize size must be >= 1, found " + n);
        }
        boolean portrait = width <= height;
        int shortSide = portrait ? width : height;
        int longSide = portrait ? height : width;
        // Python's int / int is correctly rounded; both operands are exact doubles here, so this is the same value.
        int newLong = (int) ((double) ((long) n * longSide) / shortSide);
        return portrait ? new int[] {newLong, n} : new int[] {n, newLong};
    }

    /** {@code transforms.Resize(n)} with its default bilinear interpolation (Pillow's, with antialiasing). */
    public static RgbImage resize(RgbImage image, int n) {
        return resize(image, n, Interpolation.BILINEAR);
    }

    /** {@code transforms.Resize(n, interpolation)}. */
    public static RgbImage resize(RgbImage image, int n, Interpolation interpolation) {
        int[] size = resizedSize(image.height(), image.width(), n);
        if (size[0] == image.height() && size[1] == image.width()) {
            return image;
        }
        return PilResample.resize(image, size[1], size[0], interpolation);
    }

    /**
     * {@code CenterCrop(size)(Resize(n)(image))}, computing only the resized pixels the crop keeps: the same bytes
     * as the two steps, in about the time of the crop's share of the resize.
     */
    public static RgbImage resizeAndCenterCrop(RgbImage image, int n, int size) {
        return resizeAndCenterCrop(image, n, size, Interpolation.BILINEAR);
    }

    /** {@code CenterCrop(size)(Resize(n, interpolation)(image))}, computing only the pixels the crop keeps. */
    public static RgbImage resizeAndCenterCrop(RgbImage image, int n, int size, Interpolation interpolation) {
        int[] hw = resizedSize(image.height(), image.width(), n);
        boolean unchanged = hw[0] == image.height() && hw[1] == image.width();
        if (unchanged || size > hw[0] || size > hw[1]) {
            return centerCrop(resize(image, n, interpolation), size);
        }
        int top = (int) Math.rint((hw[0] - size) / 2.0);
        int left = (int) Math.rint((hw[1] - size) / 2.0);
        return PilResample.resize(
                image, 0, 0, image.width(), image.height(), hw[1], hw[0], left, top, size, size, interpolation);
    }

    /** {@code image.resize((width, height), Image.BILINEAR)}: Pillow's bilinear resize to an exact size. */
    public static RgbImage resize(RgbImage image, int height, int width) {
        return PilResample.resize(image, width, height, Interpolation.BILINEAR);
    }

    /**
     * {@code transforms.CenterCrop(size)}: the top-left corner is {@code int(round((H - size) / 2.0))} (Python's
     * round, half to even) and likewise for the left; an image smaller than the crop is first padded with zeros,
     * {@code (size - W) // 2} on the left and {@code (size - W + 1) // 2} on the right (same for top and bottom). The
     * result is always {@code size x size}.
     */
    public static RgbImage centerCrop(RgbImage image, int size) {
        if (size < 1) {
            throw new IllegalArgumentException("crop size must be >= 1, found " + size);
        }
        int h = image.height();
        int w = image.width();
        int padTop = size > h ? (size - h) / 2 : 0;
        int padLeft = size > w ? (size - w) / 2 : 0;
        int paddedH = size > h ? size : h; // h + (size - h) // 2 + (size - h + 1) // 2 == size
        int paddedW = size > w ? size : w;
        int top = (int) Math.rint((paddedH - size) / 2.0) - padTop;
        int left = (int) Math.rint((paddedW - size) / 2.0) - padLeft;
        return crop(image, top, left, size, size);
    }

    /**
     * {@code F.crop(img, top, left, height, width)}, i.e. PIL's {@code img.crop((left, top, left + width,
     * top + height))}: pixels outside the image are black.
     */
    public static RgbImage crop(RgbImage image, int top, int left, int height, int width) {
        if (height < 1 || width < 1) {
            throw new IllegalArgumentException("crop size must be positive, found " + width + "x" + height);
        }
        byte[] in = image.data();
        int w = image.width();
        int h = image.height();
        byte[] out = new byte[3 * width * height];
        int x0 = Math.max(left, 0);
        int x1 = Math.min(left + width, w);
        if (x1 > x0) {
            for (int y = 0; y < height; y++) {
                int sy = top + y;
                if (sy >= 0 && sy < h) {
                    System.arraycopy(in, 3 * (sy * w + x0), out, 3 * (y * width + x0 - left), 3 * (x1 - x0));
                }
            }
        }
        return new RgbImage(width, height, out);
    }

    /**
     * {@code F.resized_crop(img, top, left, height, width, [size, size])}: the crop, then Pillow's bilinear resize
     * of the crop to {@code size x size} (skipped when the crop already has that size). The box must lie inside the
     * image, as {@code RandomResizedCrop.get_params} guarantees.
     */
    public static RgbImage resizedCrop(RgbImage image, int top, int left, int height, int width, int size) {
        return resizedCrop(image, top, left, height, width, size, Interpolation.BILINEAR);
    }

    /** {@code F.resized_crop(..., interpolation)}. */
    public static RgbImage resizedCrop(RgbImage image, int top, int left, int height, int width, int size,
            Interpolation interpolation) {
        return PilResample.resize(image, left, top, width, height, size, size, interpolation);
    }

    /** {@code F.hflip}: mirrors left-right. */
    public static RgbImage hflip(RgbImage image) {
        byte[] in = image.data();
        int w = image.width();
        byte[] out = new byte[in.length];
        for (int y = 0; y < image.height(); y++) {
            int row = 3 * y * w;
            for (int x = 0; x < w; x++) {
                int s = row + 3 * x;
                int d = row + 3 * (w - 1 - x);
                out[d] = in[s];
                out[d + 1] = in[s + 1];
                out[d + 2] = in[s + 2];
            }
        }
        return new RgbImage(w, image.height(), out);
    }

    /**
     * {@code transforms.Normalize(mean, std)(transforms.ToTensor()(image))} into {@code out[offset ...]}, CHW: each
     * value is {@code ((v / 255f) - mean[c]) / std[c]}, every step rounded to float32 as torch does
     * ({@code img.to(float32).div(255)}, then {@code sub_(mean).div_(std)}).
     */
    public static void toTensor(RgbImage image, float[] mean, float[] std, float[] out, int offset) {
        byte[] in = image.data();
        int plane = image.width() * image.height();
        if (offset < 0 || out.length - offset < 3 * plane) {
            throw new IllegalArgumentException("output too small for a 3x" + image.height() + "x" + image.width()
                    + " tensor at offset " + offset);
        }
        float[][] table = new float[3][256];
        for (int c = 0; c < 3; c++) {
            for (int v = 0; v < 256; v++) {
                float x = v / 255f;
                table[c][v] = (x - mean[c]) / std[c];
            }
        }
        float[] r = table[0];
        float[] g = table[1];
        float[] b = table[2];
        for (int p = 0, i = 0; p < plane; p++, i += 3) {
            out[offset + p] = r[in[i] & 0xFF];
            out[offset + plane + p] = g[in[i + 1] & 0xFF];
            out[offset + 2 * plane + p] = b[in[i + 2] & 0xFF];
        }
    }

    /** {@link #toTensor(RgbImage, float[], float[], float[], int)} into a new {@code (3, H, W)} array. */
    public static float[] toTensor(RgbImage image, float[] mean, float[] std) {
        float[] out = new float[3 * image.width() * image.height()];
        toTensor(image, mean, std, out, 0);
        return out;
    }
}
