package dev.finetune.data;

/**
 * Pillow 9.4's {@code Image.resize((w, h), Image.BILINEAR)} and {@code Image.BICUBIC} on an 8-bit RGB image, bit for
 * bit. This is what torchvision's {@code Resize} and {@code RandomResizedCrop} run on a PIL image (bilinear by
 * default; bicubic for the weights published with it, such as torchvision's EfficientNet-B0..B3).
 *
 * <p>Written by hand, following Pillow's {@code src/libImaging/Resample.c} (tag 9.4.0): no Java library matches its
 * fixed-point arithmetic (AWT's and DJL's bilinear interpolate between the two nearest pixels in float, without
 * Pillow's antialiasing), and a difference of one grey level moves probabilities by ~1e-3. What has to match:
 *
 * <ul>
 *   <li><b>Coefficients</b>, per output pixel, in double precision: {@code scale = in / out}; the filter's support
 *       is {@code s * max(scale, 1)} (s = 1 for the triangle, 2 for the cubic; a downscale widens the filter:
 *       Pillow's antialiasing); the window is {@code [(int)(center - support + 0.5), (int)(center + support + 0.5))}
 *       around {@code center = (i + 0.5) * scale}, clipped to the image; each weight is
 *       {@code filter((x - center + 0.5) / max(scale, 1))}, then all are divided by their sum. The cubic is Keys'
 *       with {@code a = -0.5}, as Pillow's {@code bicubic_filter}.
 *   <li><b>Fixed point</b>: weights become {@code (int)(0.5 + w * 2^22)}, or {@code (int)(-0.5 + w * 2^22)} for the
 *       cubic's negative lobes ({@code PRECISION_BITS = 32 - 8 - 2}); a pixel is {@code 2^21 + sum(value * weight)},
 *       shifted right by 22 (arithmetic) and clipped to 0..255.
 *   <li><b>Passes</b>: horizontal first (into a uint8 image holding only the source rows the vertical pass reads),
 *       then vertical; a pass whose size does not change is skipped, and an image whose size does not change is
 *       returned as it is.
 * </ul>
 */
final class PilResample {
    private static final int PRECISION_BITS = 32 - 8 - 2;
    private static final int HALF = 1 << (PRECISION_BITS - 1);

    private PilResample() {}

    /**
     * The coefficients of one pass: output pixel {@code i} is the weighted sum of the {@code bounds[2i + 1]} input
     * pixels from {@code bounds[2i]}, with the fixed-point weights {@code weights[i * ksize ...]}.
     */
    record Pass(int ksize, int[] bounds, int[] weights) {}

    /** Pillow's {@code precompute_coeffs} for the box {@code [0, inSize)} and the filter, then normalised. */
    static Pass precompute(int inSize, int outSize, Interpolation filter) {
        // Pillow takes the box as floats: (double)(in1 - in0) with in0 = 0f, in1 = (float) inSize.
        double scale = (double) (float) inSize / outSize;
        double filterScale = Math.max(scale, 1.0);
        double support = (filter == Interpolation.BICUBIC ? 2.0 : 1.0) * filterScale;
        int ksize = (int) Math.ceil(support) * 2 + 1;
        int[] bounds = new int[2 * outSize];
        int[] weights = new int[outSize * ksize];
        double[] k = new double[ksize];
        double ss = 1.0 / filterScale;
        for (int xx = 0; xx < outSize; xx++) {
            double center = (xx + 0.5) * scale;
            double ww = 0.0;
            int xmin = (int) (center - support + 0.5);
            if (xmin < 0) {
                xmin = 0;
            }
            int xmax = (int) (center + support + 0.5);
            if (xmax > inSize) {
                xmax = inSize;
            }
            xmax -= xmin;
            for (int x = 0; x < xmax; x++) {
                double arg = (x + xmin - center + 0.5) * ss;
                double w = filter == Interpolation.BICUBIC ? bicubic(arg) : triangle(arg);
                k[x] = w;
                ww += w;
            }
            for (int x = 0; x < xmax; x++) {
                if (ww != 0.0) {
                    k[x] /= ww;
                }
                // Pillow's normalize_coeffs_8bpc: round half away from zero (the cubic has negative lobes).
                weights[xx * ksize + x] = k[x] < 0 ? (int) (-0.5 + k[x] * (1 << PRECISION_BITS))
                        : (int) (0.5 + k[x] * (1 << PRECISION_BITS));
            }
            bounds[2 * xx] = xmin;
            bounds[2 * xx + 1] = xmax;
        }
        return new Pass(ksize, bounds, weights);
    }

    /** Pillow's {@code bicubic_filter}: Keys' cubic convolution with a = -0.5. */
    private static double bicubic(double x) {
        final double a = -0.5;
        if (x < 0.0) {
            x = -x;
        }
        if (x < 1.0) {
            return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
        }
        if (x < 2.0) {
            return (((x - 5) * x + 8) * x - 4) * a;
        }
        return 0.0;
    }

    private static double triangle(double x) {
        if (x < 0.0) {
            x = -x;
        }
        return x < 1.0 ? 1.0 - x : 0.0;
    }

    /** {@code image.resize((outWidth, outHeight), filter)}. */
    static RgbImage resize(RgbImage image, int outWidth, int outHeight, Interpolation filter) {
        return resize(image, 0, 0, image.width(), image.height(), outWidth, outHeight, filter);
    }

    /**
     * {@code image.crop((left, top, left + width, top + height)).resize((outWidth, outHeight), filter)}
     * for a box inside the image, without copying the crop first.
     */
    static RgbImage resize(RgbImage image, int left, int top, int width, int height, int outWidth, int outHeight,
            Interpolation filter) {
        return resize(image, left, top, width, height, outWidth, outHeight, 0, 0, outWidth, outHeight, filter);
    }

    /**
     * The window {@code (winLeft, winTop, winWidth, winHeight)} of
     * {@code image.crop((left, top, left + width, top + height)).resize((outWidth, outHeight), Image.BILINEAR)},
     * computing only the output pixels in the window (a centre crop of a resize costs what the crop needs). Each
     * output pixel depends only on its own coefficients and on the horizontally resampled rows it reads, so the
     * window holds exactly the pixels of the full resize.
     */
    static RgbImage resize(RgbImage image, int left, int top, int width, int height, int outWidth, int outHeight,
            int winLeft, int winTop, int winWidth, int winHeight, Interpolation filter) {
        if (left < 0 || top < 0 || width < 1 || height < 1 || left + width > image.width()
                || top + height > image.height()) {
            throw new IllegalArgumentException("box " + left + "," + top + " " + width + "x" + height
                    + " is not inside the " + image.width() + "x" + image.height() + " image");
        }
        if (outWidth < 1 || outHeight < 1) {
            throw new IllegalArgumentException("output size must be positive, found " + outWidth + "x" + outHeight);
        }
        if (winLeft < 0 || winTop < 0 || winWidth < 1 || winHeight < 1 || winLeft + winWidth > outWidth
                || winTop + winHeight > outHeight) {
            throw new IllegalArgumentException("window " + winLeft + "," + winTop + " " + winWidth + "x" + winHeight
                    + " is not inside the " + outWidth + "x" + outHeight + " output");
        }
        byte[] in = image.data();
        int inStride = 3 * image.width();
        boolean horizontal = outWidth != width;
        boolean vertical = outHeight != height;
        if (!horizontal && !vertical) {
            return PilTransforms.crop(image, top + winTop, left + winLeft, winHeight, winWidth);
        }
        Pass cols = horizontal ? precompute(width, outWidth, filter) : null;
        Pass rows = precompute(height, outHeight, filter);
        // Source rows the vertical pass reads for the window's rows (all the window's rows when it is skipped).
        int firstRow = vertical ? rows.bounds[2 * winTop] : winTop;
        int lastRow = vertical
                ? rows.bounds[2 * (winTop + winHeight - 1)] + rows.bounds[2 * (winTop + winHeight - 1) + 1]
                : winTop + winHeight;

        byte[] src = in;
        int srcStride = inStride;
        int srcLeft = left + winLeft; // an unresized column axis: window columns are source columns
        int srcTop = top;
        if (horizontal) {
            int tmpRows = lastRow - firstRow;
            byte[] tmp = new byte[3 * winWidth * tmpRows];
            horizontalPass(in, inStride, left, top + firstRow, tmp, winLeft, winWidth, tmpRows, cols);
            if (!vertical) {
                return new RgbImage(winWidth, winHeight, tmp);
            }
            src = tmp;
            srcStride = 3 * winWidth;
            srcLeft = 0;
            srcTop = -firstRow; // the vertical bounds count rows from the source box; tmp starts at firstRow
        }
        int width3 = 3 * winWidth;
        byte[] out = new byte[width3 * winHeight];
        verticalPass(src, srcStride, srcLeft, srcTop, out, width3, winTop, winHeight, rows);
        return new RgbImage(winWidth, winHeight, out);
    }

    /** Output columns {@code firstColumn ..< firstColumn + columns} of {@code rowCount} rows from {@code top}. */
    private static void horizontalPass(byte[] in, int inStride, int left, int top, byte[] out, int firstColumn,
            int columns, int rowCount, Pass pass) {
        int ksize = pass.ksize;
        int[] bounds = pass.bounds;
        int[] weights = pass.weights;
        int o = 0;
        for (int y = 0; y < rowCount; y++) {
            int rowStart = (top + y) * inStride + 3 * left;
            for (int xx = firstColumn; xx < firstColumn + columns; xx++) {
                int n = bounds[2 * xx + 1];
                int k = xx * ksize;
                int i = rowStart + 3 * bounds[2 * xx];
                int s0 = HALF;
                int s1 = HALF;
                int s2 = HALF;
                for (int x = 0; x < n; x++, i += 3) {
                    int w = weights[k + x];
                    s0 += (in[i] & 0xFF) * w;
                    s1 += (in[i + 1] & 0xFF) * w;
                    s2 += (in[i + 2] & 0xFF) * w;
                }
                out[o++] = clip8(s0);
                out[o++] = clip8(s1);
                out[o++] = clip8(s2);
            }
        }
    }

    /**
     * Output rows {@code firstRow ..< firstRow + rowCount}, summing whole rows at a time (integer sums: the order of
     * the additions does not change the result).
     */
    private static void verticalPass(byte[] in, int inStride, int left, int top, byte[] out, int width3,
            int firstRow, int rowCount, Pass pass) {
        int ksize = pass.ksize;
        int[] bounds = pass.bounds;
        int[] weights = pass.weights;
        int[] acc = new int[width3];
        for (int yy = firstRow; yy < firstRow + rowCount; yy++) {
            java.util.Arrays.fill(acc, HALF);
            int ymin = bounds[2 * yy];
            int n = bounds[2 * yy + 1];
            for (int y = 0; y < n; y++) {
                int w = weights[yy * ksize + y];
                int rowStart = (top + ymin + y) * inStride + 3 * left;
                for (int i = 0; i < width3; i++) {
                    acc[i] += (in[rowStart + i] & 0xFF) * w;
                }
            }
            int o = (yy - firstRow) * width3;
            for (int i = 0; i < width3; i++) {
                out[o + i] = clip8(acc[i]);
            }
        }
    }

    private static byte clip8(int sum) {
        int v = sum >> PRECISION_BITS;
        return (byte) (v < 0 ? 0 : Math.min(v, 255));
    }
}
