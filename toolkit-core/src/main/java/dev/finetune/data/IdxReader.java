package dev.finetune.data;

import java.io.BufferedInputStream;
import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.security.DigestInputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.zip.GZIPInputStream;
import java.util.zip.ZipException;

/**
 * Reads image/label pairs in the IDX format of MNIST and Fashion-MNIST ({@code *-images-idx3-ubyte} and
 * {@code *-labels-idx1-ubyte}), plain or gzipped; gzip is recognised by its magic bytes, not by the file name.
 *
 * <p>Only unsigned-byte files are accepted (magic {@code 0x00000803} for images, {@code 0x00000801} for labels). The
 * header is not trusted: memory is allocated as data actually arrives, so a corrupt header claiming billions of
 * images fails with a message saying how many bytes were expected and found, instead of exhausting the heap.
 */
public final class IdxReader {
    static final int IMAGES_MAGIC = 0x00000803;
    static final int LABELS_MAGIC = 0x00000801;

    // A Java array cannot be longer; IDX files of MNIST size are far below this.
    private static final long MAX_PAYLOAD_BYTES = Integer.MAX_VALUE - 8;
    // The first allocation; grows by doubling, so a lying header costs at most 2x the real data.
    private static final int INITIAL_BUFFER_BYTES = 1 << 20;

    private IdxReader() {}

    /**
     * Reads an images file and its labels file and checks that they belong together.
     *
     * @throws DataException naming the file if either is missing, not IDX, truncated or too long, or if the two files
     *     disagree on the number of samples
     */
    public static IdxImages read(Path imagesFile, Path labelsFile) {
        Payload images = readPayload(imagesFile, IMAGES_MAGIC);
        Payload labels = readPayload(labelsFile, LABELS_MAGIC);
        long imageCount = images.dims[0];
        long labelCount = labels.dims[0];
        if (imageCount != labelCount) {
            throw new DataException(
                    labelsFile,
                    "has "
                            + labelCount
                            + " labels but "
                            + imagesFile
                            + " has "
                            + imageCount
                            + " images; use the labels file that belongs to the images file (train-* with train-*,"
                            + " t10k-* with t10k-*)");
        }
        return new IdxImages(
                imagesFile,
                labelsFile,
                (int) imageCount,
                (int) images.dims[1],
                (int) images.dims[2],
                images.data,
                labels.data,
                images.sha256,
                labels.sha256);
    }

    private static final class Payload {
        final long[] dims;
        final byte[] data;
        final String sha256;

        Payload(long[] dims, byte[] data, String sha256) {
            this.dims = dims;
            this.data = data;
            this.sha256 = sha256;
        }
    }

    private static Payload readPayload(Path file, int expectedMagic) {
        String kind = expectedMagic == IMAGES_MAGIC ? "images" : "labels";
        String expectedName = expectedMagic == IMAGES_MAGIC ? "*-images-idx3-ubyte" : "*-labels-idx1-ubyte";
        if (Files.isDirectory(file)) {
            throw new DataException(file, "is a folder, expected an IDX " + kind + " file (" + expectedName + ")");
        }
        MessageDigest sha = newSha256();
        try (BufferedInputStream buffered =
                new BufferedInputStream(new DigestInputStream(Files.newInputStream(file), sha), 1 << 16)) {
            buffered.mark(2);
            boolean gzipped = buffered.read() == 0x1f && buffered.read() == 0x8b;
            buffered.reset();
            InputStream in = gzipped ? new GZIPInputStream(buffered, 1 << 16) : buffered;
            DataInputStream header = new DataInputStream(in);
            int dimCount = expectedMagic & 0xFF;
            int headerBytes = 4 + 4 * dimCount;
            long[] dims = new long[dimCount];
            int magic;
            try {
                magic = header.readInt();
                checkMagic(file, magic, expectedMagic, kind, expectedName);
                for (int i = 0; i < dimCount; i++) {
                    dims[i] = Integer.toUnsignedLong(header.readInt());
                }
            } catch (EOFException e) {
                throw new DataException(
                        file, "is shorter than the " + headerBytes + "-byte IDX header; re-download the file", e);
            }
            long expected = checkDims(file, dims, kind);
            String what = describe(dims, kind, headerBytes);
            long available = gzipped ? -1 : Files.size(file) - headerBytes;
            if (available >= 0 && available != expected) {
                // Uncompressed: the file size alone decides, before any allocation.
                throw sizeMismatch(file, what, expected, available);
            }
            byte[] data = readBounded(in, expected, file, what);
            // The digest must cover the whole file, including any gzip trailer the inflater left unread.
            buffered.transferTo(OutputStream.nullOutputStream());
            return new Payload(dims, data, HexFormat.of().formatHex(sha.digest()));
        } catch (NoSuchFileException e) {
            throw new DataException(file, "does not exist; expected an IDX " + kind + " file (" + expectedName + ")", e);
        } catch (ZipException | EOFException e) {
            throw new DataException(
                    file, "is a damaged gzip file (" + e.getMessage() + "); re-download or re-compress it", e);
        } catch (IOException e) {
            throw new DataException(file, "cannot be read (" + e + ")", e);
        }
    }

    private static void checkMagic(Path file, int magic, int expectedMagic, String kind, String expectedName) {
        if (magic == expectedMagic) {
            return;
        }
        String found = String.format("0x%08X", magic);
        if (magic == IMAGES_MAGIC || magic == LABELS_MAGIC) {
            String other = magic == IMAGES_MAGIC ? "images" : "labels";
            throw new DataException(
                    file,
                    "is an IDX " + other + " file (magic " + found + ") where an " + kind + " file was expected;"
                            + " pass the " + expectedName + " file here");
        }
        if ((magic >>> 16) == 0 && ((magic >>> 8) & 0xFF) != 0x08) {
            throw new DataException(
                    file,
                    String.format(
                            "stores IDX data type 0x%02X; only unsigned-byte IDX files (magic 0x%08X) are supported",
                            (magic >>> 8) & 0xFF,
                            expectedMagic));
        }
        throw new DataException(
                file,
                String.format(
                        "does not start with the IDX %s magic number 0x%08X (found %s); it is not an IDX %s file"
                                + " (%s, plain or gzipped)",
                        kind,
                        expectedMagic,
                        found,
                        kind,
                        expectedName));
    }

    /** Returns the number of payload bytes the header promises. */
    private static long checkDims(Path file, long[] dims, String kind) {
        if (dims[0] == 0) {
            throw new DataException(file, "contains no " + kind + " (its header says 0); use a non-empty file");
        }
        long bytes = dims[0];
        for (int i = 1; i < dims.length; i++) {
            if (dims[i] == 0) {
                throw new DataException(
                        file, "has an image size of " + dims[1] + "x" + dims[2] + "; rows and columns must be > 0");
            }
            // Each factor is < 2^32, so three of them can overflow a long; saturate, the size check fails anyway.
            bytes = bytes > Long.MAX_VALUE / dims[i] ? Long.MAX_VALUE : bytes * dims[i];
        }
        return bytes;
    }

    private static String describe(long[] dims, String kind, int headerBytes) {
        String what = dims.length == 3 ? dims[0] + " images of " + dims[1] + "x" + dims[2] : dims[0] + " labels";
        return what + " after the " + headerBytes + "-byte header";
    }

    private static byte[] readBounded(InputStream in, long expected, Path file, String what) throws IOException {
        long target = Math.min(expected, MAX_PAYLOAD_BYTES);
        byte[] buf = new byte[(int) Math.min(target, INITIAL_BUFFER_BYTES)];
        int n = 0;
        while (true) {
            if (n == buf.length) {
                if (n == target) {
                    break;
                }
                buf = Arrays.copyOf(buf, (int) Math.min(target, 2L * n));
            }
            int r;
            try {
                r = in.read(buf, n, buf.length - n);
            } catch (EOFException e) {
                // A truncated .gz ends inside the deflate stream; report it like a truncated plain file.
                r = -1;
            }
            if (r < 0) {
                break;
            }
            n += r;
        }
        if (n < expected) {
            if (n == MAX_PAYLOAD_BYTES) {
                throw new DataException(
                        file,
                        "header promises " + what + " (" + expected + " bytes), more than the "
                                + MAX_PAYLOAD_BYTES + " bytes one IDX file may hold here; split the file");
            }
            throw sizeMismatch(file, what, expected, n);
        }
        if (in.read() >= 0) {
            throw new DataException(
                    file,
                    "is longer than its header says: expected " + expected + " bytes (" + what
                            + ") but more follow; the header is corrupt or the file was concatenated, re-download it");
        }
        return buf;
    }

    private static DataException sizeMismatch(Path file, String what, long expected, long found) {
        String problem = found < expected ? "is truncated" : "is longer than its header says";
        return new DataException(
                file,
                problem + ": expected " + expected + " bytes (" + what + "), found " + found
                        + "; re-download or re-extract the file");
    }

    private static MessageDigest newSha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("every Java runtime has SHA-256", e);
        }
    }
}
