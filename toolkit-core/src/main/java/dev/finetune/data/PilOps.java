package dev.finetune.data;

import java.math.BigDecimal;
import java.math.RoundingMode;

/**
 * The image operations of torchvision's AutoAugment family as torchvision 0.14 runs them on a PIL image (Pillow 9.4),
 * byte for byte: affine warps with Pillow's nearest-neighbour kernels (16.16 fixed point, or its scaling path for pure
 * translations), rotation with Pillow's matrix (and its transposes for 90/180/270°), the {@code ImageEnhance} blends,
 * Pillow's 3×3 SMOOTH filter, {@code ImageOps} posterize, solarize, autocontrast and equalize. Written out because no
 * Java library reproduces Pillow's arithmetic, and the parity test against Debian's torchvision checks every op.
 */
public final class PilOps {
    private PilOps() {}

    /** Pillow's COORD: -1 for a negative coordinate, else truncation. */
    private static int coord(double v) {
        return v < 0.0 ? -1 : (int) v;
    }

    /** Pillow's FLOOR. */
    private static int floor(double v) {
        return v < 0.0 ? (int) Math.floor(v) : (int) v;
    }

    /**
     * {@code Image.transform(size, AFFINE, matrix, NEAREST, fillcolor=0)}: output pixel (x, y) takes input pixel
     * (a·(x+½) + b·(y+½) + c, d·(x+½) + e·(y+½) + f), black outside.
     */
    static RgbImage affineNearest(RgbImage in, double[] a) {
        int w = in.width();
        int h = in.height();
        byte[] src = in.data();
        byte[] out = new byte[src.length];
        if (a[1] == 0 && a[3] == 0) {
            // ImagingScaleAffine: tabulated columns, one row index per output row.
            int[] xin = new int[w];
            double xo = a[2] + a[0] * 0.5;
            double yo = a[5] + a[4] * 0.5;
            int xmin = w;
            int xmax = 0;
            for (int x = 0; x < w; x++) {
                int xi = coord(xo);
                if (xi >= 0 && xi < w) {
                    xmax = x + 1;
                    xmin = Math.min(xmin, x);
                    xin[x] = xi;
                }
                xo += a[0];
            }
            for (int y = 0; y < h; y++) {
                int yi = coord(yo);
                if (yi >= 0 && yi < h) {
                    for (int x = xmin; x < xmax; x++) {
                        System.arraycopy(src, (yi * w + xin[x]) * 3, out, (y * w + x) * 3, 3);
                    }
                }
                yo += a[4];
            }
            return new RgbImage(w, h, out);
        }
        if (!(fixedOk(a, 0, 0) && fixedOk(a, w, h) && fixedOk(a, 0, h) && fixedOk(a, w, 0))) {
            // Pillow's floating-point fallback (coordinates beyond 16.16 range: never for images this size).
            double xo0 = a[2] + a[1] * 0.5 + a[0] * 0.5;
            double yo0 = a[5] + a[4] * 0.5 + a[3] * 0.5;
            for (int y = 0; y < h; y++) {
                double xx = xo0;
                double yy = yo0;
                for (int x = 0; x < w; x++) {
                    int xi = coord(xx);
                    int yi = coord(yy);
                    if (xi >= 0 && xi < w && yi >= 0 && yi < h) {
                        System.arraycopy(src, (yi * w + xi) * 3, out, (y * w + x) * 3, 3);
                    }
                    xx += a[0];
                    yy += a[3];
                }
                xo0 += a[1];
                yo0 += a[4];
            }
            return new RgbImage(w, h, out);
        }
        int a0 = fix(a[0]);
        int a1 = fix(a[1]);
        int a3 = fix(a[3]);
        int a4 = fix(a[4]);
        int a2 = fix(a[2] + a[0] * 0.5 + a[1] * 0.5);
        int a5 = fix(a[5] + a[3] * 0.5 + a[4] * 0.5);
        for (int y = 0; y < h; y++) {
            int xx = a2;
            int yy = a5;
            for (int x = 0; x < w; x++) {
                int xi = xx >> 16;
                if (xi >= 0 && xi < w) {
                    int yi = yy >> 16;
                    if (yi >= 0 && yi < h) {
                        System.arraycopy(src, (yi * w + xi) * 3, out, (y * w + x) * 3, 3);
                    }
                }
                xx += a0;
                yy += a3;
            }
            a2 += a1;
            a5 += a4;
        }
        return new RgbImage(w, h, out);
    }

    private static boolean fixedOk(double[] a, int x, int y) {
        return Math.abs(x * a[0] + y * a[1] + a[2]) < 32768.0 && Math.abs(x * a[3] + y * a[4] + a[5]) < 32768.0;
    }

    private static int fix(double v) {
        return floor(v * 65536.0 + 0.5);
    }

    /** Python's {@code math.radians}: {@code x * (π / 180)}. */
    private static double radians(double deg) {
        return deg * (Math.PI / 180.0);
    }

    /** Python's {@code math.degrees}: {@code x / (π / 180)} (a division, not Java's multiplication). */
    private static double degrees(double rad) {
        return rad / (Math.PI / 180.0);
    }

    /**
     * torchvision's {@code _get_inverse_affine_matrix(center, angle, translate, scale=1, shear)}, the matrix it hands
     * Pillow.
     */
    static double[] inverseAffine(double cx, double cy, double angle, double tx, double ty, double shearX,
            double shearY) {
        double rot = radians(angle);
        double sx = radians(shearX);
        double sy = radians(shearY);
        double a = Math.cos(rot - sy) / Math.cos(sy);
        double b = -Math.cos(rot - sy) * Math.tan(sx) / Math.cos(sy) - Math.sin(rot);
        double c = Math.sin(rot - sy) / Math.cos(sy);
        double d = -Math.sin(rot - sy) * Math.tan(sx) / Math.cos(sy) + Math.cos(rot);
        double[] m = {d, -b, 0.0, -c, a, 0.0};
        m[2] += m[0] * (-cx - tx) + m[1] * (-cy - ty);
        m[5] += m[3] * (-cx - tx) + m[4] * (-cy - ty);
        m[2] += cx;
        m[5] += cy;
        return m;
    }

    /** AutoAugment's ShearX: {@code F.affine(shear=[degrees(atan(m)), 0], center=[0, 0])}. */
    public static RgbImage shearX(RgbImage in, double magnitude) {
        return affineNearest(in, inverseAffine(0, 0, 0, 0, 0, degrees(Math.atan(magnitude)), 0));
    }

    /** AutoAugment's ShearY: {@code F.affine(shear=[0, degrees(atan(m))], center=[0, 0])}. */
    public static RgbImage shearY(RgbImage in, double magnitude) {
        return affineNearest(in, inverseAffine(0, 0, 0, 0, 0, 0, degrees(Math.atan(magnitude))));
    }

    /** AutoAugment's TranslateX/Y: {@code F.affine(translate=[int(m), 0] or [0, int(m)])} about the centre. */
    public static RgbImage translate(RgbImage in, int tx, int ty) {
        return affineNearest(in, inverseAffine(in.width() * 0.5, in.height() * 0.5, 0, tx, ty, 0, 0));
    }

    /** {@code F.rotate(img, angle, NEAREST)}, which is Pillow's {@code Image.rotate(angle, NEAREST, fillcolor=0)}. */
    public static RgbImage rotate(RgbImage in, double angleDegrees) {
        int w = in.width();
        int h = in.height();
        double angle = angleDegrees % 360.0;
        if (angle < 0) {
            angle += 360.0; // Python's modulo takes the divisor's sign
        }
        if (angle == 0) {
            return in;
        }
        if (angle == 180) {
            return transpose(in, 180);
        }
        if ((angle == 90 || angle == 270) && w == h) {
            return transpose(in, (int) angle);
        }
        double cx = w / 2.0;
        double cy = h / 2.0;
        double r = -radians(angle);
        double[] m = {round15(Math.cos(r)), round15(Math.sin(r)), 0.0, round15(-Math.sin(r)), round15(Math.cos(r)),
            0.0};
        double x0 = -cx;
        double y0 = -cy;
        m[2] = m[0] * x0 + m[1] * y0 + m[2];
        m[5] = m[3] * x0 + m[4] * y0 + m[5];
        m[2] += cx;
        m[5] += cy;
        return affineNearest(in, m);
    }

    /** Python's {@code round(v, 15)}: the nearest 15-decimal value (ties to even), back to the nearest double. */
    private static double round15(double v) {
        return new BigDecimal(v).setScale(15, RoundingMode.HALF_EVEN).doubleValue();
    }

    /** Pillow's ROTATE_90 (counter-clockwise), ROTATE_180 and ROTATE_270. */
    static RgbImage transpose(RgbImage in, int degrees) {
        int w = in.width();
        int h = in.height();
        byte[] src = in.data();
        int ow = degrees == 180 ? w : h;
        int oh = degrees == 180 ? h : w;
        byte[] out = new byte[src.length];
        for (int y = 0; y < oh; y++) {
            for (int x = 0; x < ow; x++) {
                int sx;
                int sy;
                if (degrees == 90) { // out(x, y) = in(w − 1 − y, x)
                    sx = w - 1 - y;
                    sy = x;
                } else if (degrees == 270) { // out(x, y) = in(y, h − 1 − x)
                    sx = y;
                    sy = h - 1 - x;
                } else {
                    sx = w - 1 - x;
                    sy = h - 1 - y;
                }
                System.arraycopy(src, (sy * w + sx) * 3, out, (y * ow + x) * 3, 3);
            }
        }
        return new RgbImage(ow, oh, out);
    }

    /** {@code Image.blend(degenerate, image, factor)}: Pillow's float interpolation, truncated (clipped outside [0, 1]). */
    static RgbImage blend(byte[] degenerate, RgbImage image, double factor) {
        float alpha = (float) factor;
        byte[] in2 = image.data();
        if (alpha == 0.0f) {
            return new RgbImage(image.width(), image.height(), degenerate.clone());
        }
        if (alpha == 1.0f) {
            return image;
        }
        byte[] out = new byte[in2.length];
        boolean inside = alpha >= 0 && alpha <= 1.0f;
        for (int i = 0; i < out.length; i++) {
            int a = degenerate[i] & 0xFF;
            int b = in2[i] & 0xFF;
            float v = a + alpha * (b - a);
            if (inside) {
                out[i] = (byte) (int) v;
            } else {
                out[i] = (byte) (v <= 0.0f ? 0 : v >= 255.0f ? 255 : (int) v);
            }
        }
        return new RgbImage(image.width(), image.height(), out);
    }

    /** {@code ImageEnhance.Brightness(img).enhance(f)}: blend with black. */
    public static RgbImage brightness(RgbImage in, double factor) {
        return blend(new byte[in.data().length], in, factor);
    }

    /** Pillow's RGB → L: {@code (R·19595 + G·38470 + B·7471 + 0x8000) >> 16}. */
    static int luma(byte[] p, int i) {
        return ((p[i] & 0xFF) * 19595 + (p[i + 1] & 0xFF) * 38470 + (p[i + 2] & 0xFF) * 7471 + 0x8000) >> 16;
    }

    /** {@code ImageEnhance.Color(img).enhance(f)}: blend with the image's L conversion back in RGB. */
    public static RgbImage color(RgbImage in, double factor) {
        byte[] p = in.data();
        byte[] gray = new byte[p.length];
        for (int i = 0; i < p.length; i += 3) {
            byte l = (byte) luma(p, i);
            gray[i] = l;
            gray[i + 1] = l;
            gray[i + 2] = l;
        }
        return blend(gray, in, factor);
    }

    /** {@code ImageEnhance.Contrast(img).enhance(f)}: blend with the flat grey of the L image's rounded mean. */
    public static RgbImage contrast(RgbImage in, double factor) {
        byte[] p = in.data();
        long[] hist = new long[256];
        for (int i = 0; i < p.length; i += 3) {
            hist[luma(p, i)]++;
        }
        // ImageStat: mean = Σ i·h[i] / n in doubles, summed in bin order.
        double sum = 0;
        long n = 0;
        for (int i = 0; i < 256; i++) {
            sum += (double) i * hist[i];
            n += hist[i];
        }
        int mean = (int) (sum / n + 0.5);
        byte[] flat = new byte[p.length];
        java.util.Arrays.fill(flat, (byte) mean);
        return blend(flat, in, factor);
    }

    /** {@code ImageEnhance.Sharpness(img).enhance(f)}: blend with Pillow's SMOOTH filter of the image. */
    public static RgbImage sharpness(RgbImage in, double factor) {
        return blend(smooth(in), in, factor);
    }

    /**
     * {@code ImageFilter.SMOOTH}: the 3×3 kernel (1 1 1 / 1 5 1 / 1 1 1) / 13 in float, 0.5 added for rounding and
     * the sum truncated; the border rows and columns are copied.
     */
    static byte[] smooth(RgbImage in) {
        int w = in.width();
        int h = in.height();
        byte[] p = in.data();
        byte[] out = p.clone();
        if (w < 3 || h < 3) {
            return out;
        }
        float k1 = 1f / 13f;
        float k5 = 5f / 13f;
        for (int y = 1; y < h - 1; y++) {
            for (int x = 1; x < w - 1; x++) {
                for (int c = 0; c < 3; c++) {
                    float ss = 0.5f;
                    ss += row(p, w, x, y + 1, c, k1, k1, k1);
                    ss += row(p, w, x, y, c, k1, k5, k1);
                    ss += row(p, w, x, y - 1, c, k1, k1, k1);
                    out[(y * w + x) * 3 + c] = (byte) (ss <= 0.0f ? 0 : ss >= 255.0f ? 255 : (int) ss);
                }
            }
        }
        return out;
    }

    private static float row(byte[] p, int w, int x, int y, int c, float k0, float k1, float k2) {
        int base = y * w * 3 + c;
        return (float) (p[base + (x - 1) * 3] & 0xFF) * k0 + (float) (p[base + x * 3] & 0xFF) * k1
                + (float) (p[base + (x + 1) * 3] & 0xFF) * k2;
    }

    /** {@code ImageOps.posterize(img, bits)}: keep the top {@code bits} bits. */
    public static RgbImage posterize(RgbImage in, int bits) {
        int mask = ~((1 << (8 - bits)) - 1);
        int[] lut = new int[256];
        for (int i = 0; i < 256; i++) {
            lut[i] = i & mask;
        }
        return lut(in, lut, lut, lut);
    }

    /** {@code ImageOps.solarize(img, threshold)}: invert every value at or above the threshold. */
    public static RgbImage solarize(RgbImage in, double threshold) {
        int[] lut = new int[256];
        for (int i = 0; i < 256; i++) {
            lut[i] = i < threshold ? i : 255 - i;
        }
        return lut(in, lut, lut, lut);
    }

    /** {@code ImageOps.autocontrast(img)}: stretch each channel's [lo, hi] to [0, 255]. */
    public static RgbImage autocontrast(RgbImage in) {
        long[][] hist = histograms(in);
        int[][] luts = new int[3][256];
        for (int c = 0; c < 3; c++) {
            int lo = 0;
            while (lo < 256 && hist[c][lo] == 0) {
                lo++;
            }
            int hi = 255;
            while (hi >= 0 && hist[c][hi] == 0) {
                hi--;
            }
            if (hi <= lo) {
                for (int i = 0; i < 256; i++) {
                    luts[c][i] = i;
                }
            } else {
                double scale = 255.0 / (hi - lo);
                double offset = -lo * scale;
                for (int i = 0; i < 256; i++) {
                    int v = (int) (i * scale + offset);
                    luts[c][i] = Math.max(0, Math.min(255, v));
                }
            }
        }
        return lut(in, luts[0], luts[1], luts[2]);
    }

    /** {@code ImageOps.equalize(img)}: Pillow's per-channel histogram equalization. */
    public static RgbImage equalize(RgbImage in) {
        long[][] hist = histograms(in);
        int[][] luts = new int[3][256];
        for (int c = 0; c < 3; c++) {
            long total = 0;
            long last = 0;
            int nonzero = 0;
            for (int i = 0; i < 256; i++) {
                if (hist[c][i] != 0) {
                    total += hist[c][i];
                    last = hist[c][i];
                    nonzero++;
                }
            }
            long step = nonzero <= 1 ? 0 : (total - last) / 255;
            if (step == 0) {
                for (int i = 0; i < 256; i++) {
                    luts[c][i] = i;
                }
            } else {
                long n = step / 2;
                for (int i = 0; i < 256; i++) {
                    luts[c][i] = (int) Math.min(255, n / step); // Image.point clips to 8 bits
                    n += hist[c][i];
                }
            }
        }
        return lut(in, luts[0], luts[1], luts[2]);
    }

    private static long[][] histograms(RgbImage in) {
        long[][] h = new long[3][256];
        byte[] p = in.data();
        for (int i = 0; i < p.length; i += 3) {
            h[0][p[i] & 0xFF]++;
            h[1][p[i + 1] & 0xFF]++;
            h[2][p[i + 2] & 0xFF]++;
        }
        return h;
    }

    private static RgbImage lut(RgbImage in, int[] r, int[] g, int[] b) {
        byte[] p = in.data();
        byte[] out = new byte[p.length];
        for (int i = 0; i < p.length; i += 3) {
            out[i] = (byte) r[p[i] & 0xFF];
            out[i + 1] = (byte) g[p[i + 1] & 0xFF];
            out[i + 2] = (byte) b[p[i + 2] & 0xFF];
        }
        return new RgbImage(in.width(), in.height(), out);
    }

    /**
     * {@code F.adjust_hue(img, factor)} on PIL: {@code convert("HSV")}, the hue byte shifted by
     * {@code np.uint8(factor · 255)} with uint8 wrap-around, {@code convert("RGB")}; Pillow's colorsys-style
     * conversions with their float/double mix, as its C code computes them.
     */
    public static RgbImage hue(RgbImage in, double factor) {
        if (!(factor >= -0.5 && factor <= 0.5)) {
            throw new IllegalArgumentException("hue factor must be in [-0.5, 0.5], found " + factor);
        }
        int shift = ((int) (factor * 255)) & 0xFF; // np.uint8 of a float: truncate, then wrap
        byte[] p = in.data();
        byte[] out = new byte[p.length];
        for (int i = 0; i < p.length; i += 3) {
            int r = p[i] & 0xFF;
            int g = p[i + 1] & 0xFF;
            int b = p[i + 2] & 0xFF;
            int maxc = Math.max(r, Math.max(g, b));
            int minc = Math.min(r, Math.min(g, b));
            int uh;
            int us;
            int uv = maxc;
            if (minc == maxc) {
                uh = 0;
                us = 0;
            } else {
                float cr = (float) (maxc - minc);
                float s = cr / (float) maxc;
                float rc = ((float) (maxc - r)) / cr;
                float gc = ((float) (maxc - g)) / cr;
                float bc = ((float) (maxc - b)) / cr;
                float h;
                if (r == maxc) {
                    h = bc - gc;
                } else if (g == maxc) {
                    h = (float) (2.0 + rc - bc);
                } else {
                    h = (float) (4.0 + gc - rc);
                }
                h = (float) ((h / 6.0 + 1.0) % 1.0); // C fmod: the sign of the dividend, positive here
                uh = clip8((int) (h * 255.0));
                us = clip8((int) (s * 255.0));
            }
            int hh = (uh + shift) & 0xFF;
            hsvToRgb(hh, us, uv, out, i);
        }
        return new RgbImage(in.width(), in.height(), out);
    }

    private static int clip8(int v) {
        return v <= 0 ? 0 : Math.min(v, 255);
    }

    /** Pillow's hsv2rgb for one pixel. */
    private static void hsvToRgb(int h, int s, int v, byte[] out, int o) {
        if (s == 0) {
            out[o] = (byte) v;
            out[o + 1] = (byte) v;
            out[o + 2] = (byte) v;
            return;
        }
        int i = (int) Math.floor((float) h * 6.0 / 255.0);
        float f = (float) ((float) h * 6.0 / 255.0 - (float) i);
        float fs = (float) (((float) s) / 255.0);
        int up = clip8((int) cRound((float) v * (1.0 - fs)));
        int uq = clip8((int) cRound((float) v * (1.0 - fs * f)));
        int ut = clip8((int) cRound((float) v * (1.0 - fs * (1.0 - f))));
        int r;
        int g;
        int b;
        switch (i % 6) {
            case 0 -> {
                r = v;
                g = ut;
                b = up;
            }
            case 1 -> {
                r = uq;
                g = v;
                b = up;
            }
            case 2 -> {
                r = up;
                g = v;
                b = ut;
            }
            case 3 -> {
                r = up;
                g = uq;
                b = v;
            }
            case 4 -> {
                r = ut;
                g = up;
                b = v;
            }
            default -> {
                r = v;
                g = up;
                b = uq;
            }
        }
        out[o] = (byte) r;
        out[o + 1] = (byte) g;
        out[o + 2] = (byte) b;
    }

    /** C's {@code round}: half away from zero. */
    private static double cRound(double v) {
        return v < 0 ? -Math.floor(-v + 0.5) : Math.floor(v + 0.5);
    }
}
