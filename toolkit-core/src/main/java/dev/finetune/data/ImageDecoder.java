package dev.finetune.data;

import java.awt.image.ColorModel;
import java.awt.image.ComponentSampleModel;
import java.awt.image.DataBuffer;
import java.awt.image.DataBufferByte;
import java.awt.image.IndexColorModel;
import java.awt.image.Raster;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.zip.CRC32;
import javax.imageio.ImageIO;
import javax.imageio.ImageReader;
import javax.imageio.stream.ImageInputStream;
import javax.imageio.stream.MemoryCacheImageInputStream;

/**
 * Decodes PNG, JPEG, BMP and GIF files to exactly what torchvision gets from {@code PIL.Image.open(f).convert("RGB")}
 * with Pillow 9.4 (first frame of a GIF), as an {@link RgbImage}.
 *
 * <p>The JDK's ImageIO readers decode the compressed data (inflate, PNG unfiltering and Adam7, JPEG entropy
 * decoding, IDCT and chroma upsampling, LZW, BMP RLE); everything PIL decides itself is done here, from the file's own
 * header, never through ImageIO's colour management ({@code BufferedImage.getRGB}, ICC profiles, gAMA):
 *
 * <ul>
 *   <li><b>PNG</b> (mode from bit depth and colour type, as {@code PngImagePlugin._MODES}): gray 1/2/4-bit is scaled
 *       to 0..255 (0/255, x85, x17); 16-bit gray is PIL mode {@code I}, whose conversion to RGB clips at 255 (so
 *       most of a 16-bit gray image becomes white, as in PIL); 16-bit RGB, RGBA and gray+alpha keep the high byte;
 *       a palette image looks its indices up in PLTE (an index past PLTE's end is gray {@code (i, i, i)}, Pillow's
 *       default palette); alpha and tRNS are dropped, never composited. A chunk before the image data with a wrong
 *       CRC is an error, as in PIL.
 *   <li><b>JPEG</b>: the raw components from {@link ImageReader#readRaster} (no colour conversion), then libjpeg's
 *       own rules: the colour space is guessed as libjpeg-turbo's {@code default_decompress_parms} does (JFIF marker
 *       or component ids 1, 2, 3: YCbCr; Adobe transform 0 or ids 'R', 'G', 'B': RGB; 4 components: CMYK, or YCCK
 *       for Adobe transform 2), YCbCr is converted with libjpeg's fixed-point tables ({@code jdcolor.c}), YCCK to
 *       CMYK likewise, and CMYK is inverted (PIL's {@code CMYK;I}, Adobe's polarity) and converted with PIL's
 *       {@code cmyk2rgb}. A truncated JPEG is an error, as in PIL. The entropy decoding, IDCT and chroma
 *       upsampling are the JDK's libjpeg's: Debian's OpenJDK links the system's libjpeg-turbo, the library Pillow
 *       uses, and there the samples are PIL's bit for bit (4:4:4, 4:2:2, 4:2:0, 4:4:0, 4:1:1, progressive; checked
 *       by {@code PreprocessingParityTest}). JDK builds that bundle IJG libjpeg 6b instead have the same integer
 *       IDCT and 4:2:2/4:2:0 upsampling, but no smooth ("fancy") upsampling for 4:4:0, so 4:4:0 files at least
 *       would differ there (not measured: no such JDK here); the parity test would show it.
 *   <li><b>BMP</b>: palette lookups; 5- and 6-bit fields scaled as PIL's {@code BGR;15}/{@code BGR;16} unpackers
 *       ({@code v * 255 / 31}); alpha dropped.
 *   <li><b>GIF</b>: the first frame on the logical screen (grown to hold the frame, as PIL does), the area outside the
 *       frame filled with the transparent index, else index 0; the frame's local colour table, else the global one;
 *       no table at all is gray.
 * </ul>
 *
 * <p>The image size is read from the header before any pixel is decoded. Thread-safe: every call uses its own
 * reader.
 */
public final class ImageDecoder {
    private ImageDecoder() {}

    /** The system property that sets {@link #maxPixels()}. */
    public static final String MAX_PIXELS_PROPERTY = "finetune.max_image_pixels";
    /** Default largest image, in pixels: 100 megapixels (300 MB decoded), far above any training photo. */
    public static final long DEFAULT_MAX_PIXELS = 100_000_000L;
    /** Largest image file read (a decoded image is checked by {@link #maxPixels()}; this bounds the file itself). */
    public static final long MAX_FILE_BYTES = 512L << 20;

    /**
     * The largest image decoded, in pixels: a decompression bomb (a 0.9 MB PNG of 30000² pixels) is refused from its
     * header before anything is allocated. {@code -Dfinetune.max_image_pixels=N} changes it.
     */
    public static long maxPixels() {
        String v = System.getProperty(MAX_PIXELS_PROPERTY);
        if (v == null) {
            return DEFAULT_MAX_PIXELS;
        }
        try {
            long n = Long.parseLong(v.trim());
            return n > 0 ? n : DEFAULT_MAX_PIXELS;
        } catch (NumberFormatException e) {
            return DEFAULT_MAX_PIXELS;
        }
    }

    /** Reads and decodes a file; see {@link #decode(byte[])}. */
    public static RgbImage read(Path file) throws IOException {
        long size = Files.size(file);
        if (size > MAX_FILE_BYTES) {
            throw new IOException("the file is " + size + " bytes, more than the " + MAX_FILE_BYTES
                    + " an image file may have");
        }
        return decode(Files.readAllBytes(file));
    }

    /**
     * Decodes an image file's bytes.
     *
     * @throws IOException if the bytes are not a PNG, JPEG, BMP or GIF file, are corrupt or truncated, or use a
     *     variant PIL cannot open either; the message says which
     */
    public static RgbImage decode(byte[] bytes) throws IOException {
        try {
            if (startsWith(bytes, 0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A)) {
                return decodePng(bytes);
            }
            if (startsWith(bytes, 0xFF, 0xD8, 0xFF)) {
                return decodeJpeg(bytes);
            }
            if (startsWith(bytes, 'G', 'I', 'F', '8')) {
                return decodeGif(bytes);
            }
            if (startsWith(bytes, 'B', 'M')) {
                return decodeBmp(bytes);
            }
        } catch (IndexOutOfBoundsException e) {
            throw new IOException("truncated or corrupt file (" + e.getMessage() + ")", e);
        } catch (RuntimeException e) {
            // ImageIO reports some malformed files with unchecked exceptions; they are the same problem to the user.
            throw new IOException("corrupt image data: " + e, e);
        }
        StringBuilder start = new StringBuilder();
        for (int i = 0; i < Math.min(8, bytes.length); i++) {
            start.append(String.format(" %02x", bytes[i] & 0xFF));
        }
        throw new IOException("not a PNG, JPEG, BMP or GIF file (it starts with" + (bytes.length == 0 ? " nothing"
                : start.toString()) + ")");
    }

    // ---------------------------------------------------------------- PNG

    private static RgbImage decodePng(byte[] bytes) throws IOException {
        int pos = 8;
        int width = -1;
        int height = -1;
        int bitDepth = 0;
        int colorType = -1;
        byte[] palette = null;
        while (pos + 8 <= bytes.length) {
            int length = be32(bytes, pos);
            String type = new String(bytes, pos + 4, 4, StandardCharsets.ISO_8859_1);
            int data = pos + 8;
            if (length < 0 || data + (long) length > bytes.length) {
                throw new IOException("truncated PNG file (chunk " + type + " runs past the end)");
            }
            if (width < 0 && !type.equals("IHDR")) {
                throw new IOException("PNG file without an IHDR chunk first");
            }
            if (type.equals("IDAT")) {
                break;
            }
            // PIL checks the CRC of every chunk before the image data ("broken PNG file"); ImageIO does not.
            CRC32 crc = new CRC32();
            crc.update(bytes, pos + 4, 4 + length);
            if (data + length + 4 > bytes.length) {
                throw new IOException("truncated PNG file (chunk " + type + " has no CRC)");
            }
            if ((int) crc.getValue() != be32(bytes, data + length)) {
                throw new IOException("broken PNG file (bad checksum in chunk " + type + ")");
            }
            if (type.equals("IHDR")) {
                width = be32(bytes, data);
                height = be32(bytes, data + 4);
                bitDepth = bytes[data + 8] & 0xFF;
                colorType = bytes[data + 9] & 0xFF;
            } else if (type.equals("PLTE")) {
                palette = Arrays.copyOfRange(bytes, data, data + length - length % 3);
            }
            pos = data + length + 4;
        }
        if (width < 0) {
            throw new IOException("PNG file without an IHDR chunk");
        }
        checkSize(width, height);
        if (!pngModeKnown(bitDepth, colorType)) {
            throw new IOException("PNG bit depth " + bitDepth + " with colour type " + colorType
                    + " is not a valid combination (PIL cannot open it either)");
        }
        if (colorType == 3 && palette == null) {
            throw new IOException("palette PNG without a PLTE chunk");
        }
        Raster raster;
        try (ImageInputStream in = stream(bytes)) {
            ImageReader reader = reader("png");
            try {
                reader.setInput(in, true, true);
                raster = reader.read(0).getRaster();
            } finally {
                reader.dispose();
            }
        }
        checkRaster(raster, width, height);
        int bits = raster.getSampleModel().getSampleSize(0);
        int bands = raster.getNumBands();
        if (bands < (colorType == 2 || colorType == 6 ? 3 : 1) || (bits != 16 && bits > 8)) {
            throw new IOException("unexpected PNG raster: " + bands + " bands of " + bits + " bits for colour type "
                    + colorType);
        }
        byte[] out = new byte[3 * width * height];
        int[] row = null;
        for (int y = 0; y < height; y++) {
            row = raster.getPixels(0, y, width, 1, row);
            for (int x = 0, i = 0, o = 3 * y * width; x < width; x++, i += bands, o += 3) {
                switch (colorType) {
                    case 0 -> { // L, or I for 16 bits: convert("RGB") clips I at 255
                        int v = bits == 16 ? Math.min(row[i], 255) : scaleLowBits(row[i], bits);
                        out[o] = out[o + 1] = out[o + 2] = (byte) v;
                    }
                    case 4 -> { // LA, or LA;16B unpacked to RGBA: the high byte
                        int v = bits == 16 ? row[i] >> 8 : row[i];
                        out[o] = out[o + 1] = out[o + 2] = (byte) v;
                    }
                    case 3 -> {
                        int index = row[i];
                        if (3 * index + 2 < palette.length) {
                            out[o] = palette[3 * index];
                            out[o + 1] = palette[3 * index + 1];
                            out[o + 2] = palette[3 * index + 2];
                        } else { // Pillow's palette starts as a gray ramp; PLTE overwrites only its first entries
                            out[o] = out[o + 1] = out[o + 2] = (byte) index;
                        }
                    }
                    default -> { // 2 (RGB) and 6 (RGBA): 16-bit samples keep their high byte (RGB;16B, RGBA;16B)
                        int shift = bits == 16 ? 8 : 0;
                        out[o] = (byte) (row[i] >> shift);
                        out[o + 1] = (byte) (row[i + 1] >> shift);
                        out[o + 2] = (byte) (row[i + 2] >> shift);
                    }
                }
            }
        }
        return new RgbImage(width, height, out);
    }

    private static boolean pngModeKnown(int bitDepth, int colorType) {
        return switch (colorType) {
            case 0 -> bitDepth == 1 || bitDepth == 2 || bitDepth == 4 || bitDepth == 8 || bitDepth == 16;
            case 3 -> bitDepth == 1 || bitDepth == 2 || bitDepth == 4 || bitDepth == 8;
            case 2, 4, 6 -> bitDepth == 8 || bitDepth == 16;
            default -> false;
        };
    }

    /** A sample of {@code bits} &lt; 8 bits scaled to 0..255 as PIL's unpackers do (1: x255, 2: x85, 4: x17, 5: v*255/31). */
    private static int scaleLowBits(int v, int bits) {
        if (bits >= 8) {
            return v;
        }
        int max = (1 << bits) - 1;
        return v * 255 / max;
    }

    // ---------------------------------------------------------------- JPEG

    private static final int[] CR_R = new int[256];
    private static final int[] CB_B = new int[256];
    private static final int[] CR_G = new int[256];
    private static final int[] CB_G = new int[256];

    static {
        // libjpeg's build_ycc_rgb_table (jdcolor.c): SCALEBITS 16, FIX(x) = (int)(x * 65536 + 0.5).
        for (int i = 0; i < 256; i++) {
            int x = i - 128;
            CR_R[i] = (fix(1.40200) * x + (1 << 15)) >> 16;
            CB_B[i] = (fix(1.77200) * x + (1 << 15)) >> 16;
            CR_G[i] = -fix(0.71414) * x;
            CB_G[i] = -fix(0.34414) * x + (1 << 15);
        }
    }

    private static int fix(double x) {
        return (int) (x * 65536 + 0.5);
    }

    private static int clamp255(int v) {
        return v < 0 ? 0 : Math.min(v, 255);
    }

    private static RgbImage decodeJpeg(byte[] bytes) throws IOException {
        JpegHeader header = JpegHeader.parse(bytes);
        checkSize(header.width, header.height);
        if (header.precision != 8) {
            throw new IOException(header.precision + "-bit JPEG (PIL opens only 8-bit JPEG)");
        }
        int n = header.componentIds.length;
        if (n != 1 && n != 3 && n != 4) {
            throw new IOException("JPEG with " + n + " components (PIL opens 1, 3 or 4)");
        }
        Raster raster;
        List<String> warnings = new ArrayList<>();
        try (ImageInputStream in = stream(bytes)) {
            ImageReader reader = reader("jpeg");
            try {
                reader.setInput(in, true, true);
                reader.addIIOReadWarningListener((source, warning) -> warnings.add(warning));
                raster = reader.readRaster(0, null);
            } finally {
                reader.dispose();
            }
        }
        for (String warning : warnings) {
            // The file ends before its EOI marker (the JDK's "Truncated File - Missing EOI marker", libjpeg's
            // "Premature end of JPEG file"): libjpeg fills the rest with gray and goes on, PIL stops with "image file
            // is truncated". Other libjpeg warnings (corrupt data up to a marker, extraneous bytes) PIL ignores too.
            if (warning.startsWith("Truncated File") || warning.startsWith("Premature end of JPEG file")) {
                throw new IOException("truncated JPEG file (" + warning + ")");
            }
        }
        checkRaster(raster, header.width, header.height);
        if (raster.getNumBands() != n || raster.getSampleModel().getSampleSize(0) != 8) {
            throw new IOException("unexpected JPEG raster: " + raster.getNumBands() + " bands for " + n
                    + " components");
        }
        int width = header.width;
        int height = header.height;
        byte[] samples = interleavedBytes(raster);
        byte[] out;
        if (n == 1) {
            return RgbImage.fromGray(width, height, samples);
        } else if (n == 3) {
            if (!header.isYCbCr()) {
                return new RgbImage(width, height, samples); // Adobe transform 0 or ids R, G, B: no conversion
            }
            out = new byte[3 * width * height];
            for (int i = 0; i < out.length; i += 3) {
                int y = samples[i] & 0xFF;
                int cb = samples[i + 1] & 0xFF;
                int cr = samples[i + 2] & 0xFF;
                out[i] = (byte) clamp255(y + CR_R[cr]);
                out[i + 1] = (byte) clamp255(y + ((CB_G[cb] + CR_G[cr]) >> 16));
                out[i + 2] = (byte) clamp255(y + CB_B[cb]);
            }
        } else {
            boolean ycck = header.isYcck();
            out = new byte[3 * width * height];
            for (int p = 0, i = 0, o = 0; p < width * height; p++, i += 4, o += 3) {
                int c = samples[i] & 0xFF;
                int m = samples[i + 1] & 0xFF;
                int ye = samples[i + 2] & 0xFF;
                int k = samples[i + 3] & 0xFF;
                if (ycck) { // libjpeg's ycck_cmyk_convert: YCbCr to RGB, then 255 - x; K unchanged
                    int y = c;
                    int cb = m;
                    int cr = ye;
                    c = 255 - clamp255(y + CR_R[cr]);
                    m = 255 - clamp255(y + ((CB_G[cb] + CR_G[cr]) >> 16));
                    ye = 255 - clamp255(y + CB_B[cb]);
                }
                // PIL reads JPEG CMYK as "CMYK;I" (inverted, Adobe's polarity), then convert("RGB") is cmyk2rgb.
                int nk = k; // 255 - (255 - k)
                out[o] = (byte) (nk - mulDiv255(255 - c, nk));
                out[o + 1] = (byte) (nk - mulDiv255(255 - m, nk));
                out[o + 2] = (byte) (nk - mulDiv255(255 - ye, nk));
            }
        }
        return new RgbImage(width, height, out);
    }

    /** PIL's MULDIV255: a * b / 255, rounded, in integers. */
    private static int mulDiv255(int a, int b) {
        int tmp = a * b + 128;
        return ((tmp >> 8) + tmp) >> 8;
    }

    /** What libjpeg reads before the first scan, as far as the colour space and size go. */
    static final class JpegHeader {
        int width;
        int height;
        int precision;
        int[] componentIds;
        boolean jfif;
        int adobeTransform = -1;

        static JpegHeader parse(byte[] b) throws IOException {
            JpegHeader h = new JpegHeader();
            int pos = 2;
            while (true) {
                if (pos >= b.length) {
                    throw new IOException("truncated JPEG file (no image data)");
                }
                if ((b[pos] & 0xFF) != 0xFF) {
                    pos++; // libjpeg skips garbage before a marker (with a warning)
                    continue;
                }
                int marker = b[pos + 1] & 0xFF;
                if (marker == 0xFF) {
                    pos++; // fill byte
                    continue;
                }
                if (marker == 0xD8 || (marker >= 0xD0 && marker <= 0xD7) || marker == 0x01) {
                    pos += 2;
                    continue;
                }
                if (marker == 0xD9) {
                    throw new IOException("JPEG file with no image (end of image before any scan)");
                }
                int length = ((b[pos + 2] & 0xFF) << 8) | (b[pos + 3] & 0xFF);
                int data = pos + 4;
                int dataLength = length - 2;
                if (dataLength < 0 || data + dataLength > b.length) {
                    throw new IOException("truncated JPEG file (marker segment runs past the end)");
                }
                if (marker == 0xDA) {
                    if (h.componentIds == null) {
                        throw new IOException("JPEG scan before any frame header");
                    }
                    return h;
                }
                boolean sof = marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
                if (sof) {
                    h.precision = b[data] & 0xFF;
                    h.height = ((b[data + 1] & 0xFF) << 8) | (b[data + 2] & 0xFF);
                    h.width = ((b[data + 3] & 0xFF) << 8) | (b[data + 4] & 0xFF);
                    int n = b[data + 5] & 0xFF;
                    h.componentIds = new int[n];
                    for (int i = 0; i < n; i++) {
                        h.componentIds[i] = b[data + 6 + 3 * i] & 0xFF;
                    }
                } else if (marker == 0xE0 && dataLength >= 14 && matchesAt(b, data, 'J', 'F', 'I', 'F', 0)) {
                    h.jfif = true;
                } else if (marker == 0xEE && dataLength >= 12 && matchesAt(b, data, 'A', 'd', 'o', 'b', 'e')) {
                    h.adobeTransform = b[data + 11] & 0xFF;
                }
                pos = data + dataLength;
            }
        }

        /** libjpeg-turbo's guess for 3 components. */
        boolean isYCbCr() {
            if (jfif) {
                return true;
            }
            if (adobeTransform >= 0) {
                return adobeTransform != 0;
            }
            return !(componentIds[0] == 'R' && componentIds[1] == 'G' && componentIds[2] == 'B');
        }

        /** libjpeg-turbo's guess for 4 components. */
        boolean isYcck() {
            return adobeTransform >= 0 && adobeTransform != 0;
        }
    }

    // ---------------------------------------------------------------- GIF

    private static RgbImage decodeGif(byte[] b) throws IOException {
        int screenWidth = le16(b, 6);
        int screenHeight = le16(b, 8);
        int flags = b[10] & 0xFF;
        int pos = 13;
        byte[] globalTable = null;
        if ((flags & 0x80) != 0) {
            int size = 3 << ((flags & 7) + 1);
            globalTable = Arrays.copyOfRange(b, pos, pos + size);
            pos += size;
        }
        int transparent = -1;
        while (true) {
            int block = b[pos] & 0xFF;
            if (block == 0x21) { // extension: label, then sub-blocks
                int label = b[pos + 1] & 0xFF;
                pos += 2;
                if (label == 0xF9 && (b[pos] & 0xFF) >= 4) {
                    transparent = (b[pos + 1] & 1) != 0 ? b[pos + 4] & 0xFF : -1;
                }
                while ((b[pos] & 0xFF) != 0) {
                    pos += 1 + (b[pos] & 0xFF);
                }
                pos++;
            } else if (block == 0x2C) {
                break;
            } else if (block == 0x3B) {
                throw new IOException("GIF file with no image");
            } else {
                pos++; // PIL skips unknown bytes between blocks
            }
        }
        int left = le16(b, pos + 1);
        int top = le16(b, pos + 3);
        int frameWidth = le16(b, pos + 5);
        int frameHeight = le16(b, pos + 7);
        int frameFlags = b[pos + 9] & 0xFF;
        byte[] table = globalTable;
        if ((frameFlags & 0x80) != 0) {
            int size = 3 << ((frameFlags & 7) + 1);
            table = Arrays.copyOfRange(b, pos + 10, pos + 10 + size);
        }
        // PIL grows the image to hold a frame that sticks out of the logical screen.
        int width = Math.max(screenWidth, left + frameWidth);
        int height = Math.max(screenHeight, top + frameHeight);
        checkSize(width, height);
        Raster raster;
        try (ImageInputStream in = stream(b)) {
            ImageReader reader = reader("gif");
            try {
                reader.setInput(in, true, true);
                raster = reader.read(0).getRaster();
            } finally {
                reader.dispose();
            }
        }
        int fill = transparent >= 0 ? transparent : 0;
        int[] indices = new int[width * height];
        Arrays.fill(indices, fill);
        if (raster.getWidth() == width && raster.getHeight() == height) {
            left = 0; // a reader that already placed the frame on the screen
            top = 0;
            frameWidth = width;
            frameHeight = height;
        } else if (raster.getWidth() != frameWidth || raster.getHeight() != frameHeight) {
            throw new IOException("GIF frame decoded as " + raster.getWidth() + "x" + raster.getHeight()
                    + ", its header says " + frameWidth + "x" + frameHeight);
        }
        int[] row = null;
        for (int y = 0; y < frameHeight; y++) {
            row = raster.getSamples(0, y, frameWidth, 1, 0, row);
            System.arraycopy(row, 0, indices, (top + y) * width + left, frameWidth);
        }
        byte[] out = new byte[3 * width * height];
        for (int p = 0, o = 0; p < indices.length; p++, o += 3) {
            int index = indices[p];
            if (table != null && 3 * index + 2 < table.length) {
                out[o] = table[3 * index];
                out[o + 1] = table[3 * index + 1];
                out[o + 2] = table[3 * index + 2];
            } else { // no colour table (PIL mode L), or past its end (Pillow's default gray ramp)
                out[o] = out[o + 1] = out[o + 2] = (byte) index;
            }
        }
        return new RgbImage(width, height, out);
    }

    // ---------------------------------------------------------------- BMP

    private static RgbImage decodeBmp(byte[] bytes) throws IOException {
        Raster raster;
        ColorModel model;
        try (ImageInputStream in = stream(bytes)) {
            ImageReader reader = reader("bmp");
            try {
                reader.setInput(in, true, true);
                checkSize(reader.getWidth(0), reader.getHeight(0));
                var image = reader.read(0);
                raster = image.getRaster();
                model = image.getColorModel();
            } finally {
                reader.dispose();
            }
        }
        return fromRaster(raster, model);
    }

    /** Raw samples and their colour model, without colour management, by PIL's rules for BMP. */
    private static RgbImage fromRaster(Raster raster, ColorModel model) throws IOException {
        int width = raster.getWidth();
        int height = raster.getHeight();
        int bands = raster.getNumBands();
        byte[] out = new byte[3 * width * height];
        int[] row = null;
        if (model instanceof IndexColorModel palette) {
            int size = palette.getMapSize();
            for (int y = 0; y < height; y++) {
                row = raster.getSamples(0, y, width, 1, 0, row);
                for (int x = 0, o = 3 * y * width; x < width; x++, o += 3) {
                    int index = row[x];
                    if (index < size) {
                        out[o] = (byte) palette.getRed(index);
                        out[o + 1] = (byte) palette.getGreen(index);
                        out[o + 2] = (byte) palette.getBlue(index);
                    } else {
                        out[o] = out[o + 1] = out[o + 2] = (byte) index;
                    }
                }
            }
            return new RgbImage(width, height, out);
        }
        int colors = model.getNumColorComponents();
        if (colors != 1 && colors != 3) {
            throw new IOException("image with " + colors + " colour components (expected gray or RGB)");
        }
        int[] bits = raster.getSampleModel().getSampleSize();
        for (int b = 0; b < colors; b++) {
            if (bits[b] > 8) {
                throw new IOException(bits[b] + "-bit samples are not supported");
            }
        }
        for (int y = 0; y < height; y++) {
            row = raster.getPixels(0, y, width, 1, row);
            for (int x = 0, i = 0, o = 3 * y * width; x < width; x++, i += bands, o += 3) {
                if (colors == 1) {
                    out[o] = out[o + 1] = out[o + 2] = (byte) scaleLowBits(row[i], bits[0]);
                } else {
                    out[o] = (byte) scaleLowBits(row[i], bits[0]);
                    out[o + 1] = (byte) scaleLowBits(row[i + 1], bits[1]);
                    out[o + 2] = (byte) scaleLowBits(row[i + 2], bits[2]);
                }
            }
        }
        return new RgbImage(width, height, out);
    }

    // ---------------------------------------------------------------- helpers

    /**
     * The raster's 8-bit samples, pixel-interleaved in band order with no padding: the raster's own array when it is
     * laid out that way (a JPEG raster is), else a copy.
     */
    private static byte[] interleavedBytes(Raster raster) {
        int width = raster.getWidth();
        int height = raster.getHeight();
        int bands = raster.getNumBands();
        DataBuffer buffer = raster.getDataBuffer();
        if (raster.getSampleModel() instanceof ComponentSampleModel sm
                && buffer instanceof DataBufferByte bytes
                && bytes.getNumBanks() == 1
                && raster.getSampleModelTranslateX() == 0
                && raster.getSampleModelTranslateY() == 0
                && sm.getPixelStride() == bands
                && sm.getScanlineStride() == bands * width
                && bytes.getOffset() == 0
                && bytes.getData().length == bands * width * height) {
            int[] offsets = sm.getBandOffsets();
            boolean inOrder = true;
            for (int b = 0; b < bands; b++) {
                inOrder &= offsets[b] == b && sm.getBankIndices()[b] == 0;
            }
            if (inOrder) {
                return bytes.getData();
            }
        }
        byte[] out = new byte[bands * width * height];
        int[] row = null;
        for (int y = 0; y < height; y++) {
            row = raster.getPixels(0, y, width, 1, row);
            for (int i = 0, o = y * width * bands; i < width * bands; i++) {
                out[o + i] = (byte) row[i];
            }
        }
        return out;
    }

    private static ImageReader reader(String format) throws IOException {
        Iterator<ImageReader> readers = ImageIO.getImageReadersByFormatName(format);
        ImageReader fallback = null;
        while (readers.hasNext()) {
            ImageReader r = readers.next();
            // The JDK's own reader is the one whose raw output this class was checked against.
            if (r.getClass().getName().startsWith("com.sun.imageio.plugins.")) {
                return r;
            }
            if (fallback == null) {
                fallback = r;
            }
        }
        if (fallback == null) {
            throw new IOException("this Java runtime has no " + format + " reader");
        }
        return fallback;
    }

    private static ImageInputStream stream(byte[] bytes) {
        return new MemoryCacheImageInputStream(new ByteArrayInputStream(bytes));
    }

    private static void checkSize(int width, int height) throws IOException {
        if (width < 1 || height < 1) {
            throw new IOException("the header gives an empty image (" + width + "x" + height + ")");
        }
        long max = maxPixels();
        if ((long) width * height > max) {
            throw new IOException("the image is " + width + "x" + height + " pixels, more than the " + max
                    + " allowed (a decompression bomb, or raise -D" + MAX_PIXELS_PROPERTY + ")");
        }
        if (3L * width * height > Integer.MAX_VALUE - 16) {
            throw new IOException("the image is too large to decode (" + width + "x" + height + " pixels)");
        }
    }

    private static void checkRaster(Raster raster, int width, int height) throws IOException {
        if (raster.getWidth() != width || raster.getHeight() != height) {
            throw new IOException("decoded " + raster.getWidth() + "x" + raster.getHeight() + " pixels, the header says "
                    + width + "x" + height);
        }
    }

    private static boolean startsWith(byte[] b, int... prefix) {
        return matchesAt(b, 0, prefix);
    }

    private static boolean matchesAt(byte[] b, int at, int... prefix) {
        if (b.length - at < prefix.length) {
            return false;
        }
        for (int i = 0; i < prefix.length; i++) {
            if ((b[at + i] & 0xFF) != prefix[i]) {
                return false;
            }
        }
        return true;
    }

    private static int be32(byte[] b, int at) {
        return ((b[at] & 0xFF) << 24) | ((b[at + 1] & 0xFF) << 16) | ((b[at + 2] & 0xFF) << 8) | (b[at + 3] & 0xFF);
    }

    private static int le16(byte[] b, int at) {
        return (b[at] & 0xFF) | ((b[at + 1] & 0xFF) << 8);
    }
}
