package dev.finetune.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.finetune.ErrorKind;
import java.io.ByteArrayOutputStream;
import java.io.DataOutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.Arrays;
import java.util.HexFormat;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class IdxReaderTest {
    @TempDir Path dir;

    @Test
    void readsPlainAndGzippedFilesAlike() throws Exception {
        Path[] plain = IdxFixtures.writePair(dir, "plain", 3, 4, false, 2, 0, 1);
        Path[] gz = IdxFixtures.writePair(dir, "gz", 3, 4, true, 2, 0, 1);

        IdxImages a = IdxReader.read(plain[0], plain[1]);
        IdxImages b = IdxReader.read(gz[0], gz[1]);

        for (IdxImages data : new IdxImages[] {a, b}) {
            assertEquals(3, data.count());
            assertEquals(3, data.rows());
            assertEquals(4, data.cols());
            assertEquals(2, data.label(0));
            assertEquals(1, data.label(2));
            byte[] image1 = data.image(1);
            assertEquals(12, image1.length);
            assertEquals(IdxFixtures.pixel(1, 2), image1[2 * 4 + 3] & 0xFF);
            assertArrayEquals(new int[] {1, 1, 1}, data.labelCounts());
        }
        assertArrayEquals(a.image(2), b.image(2));
    }

    @Test
    void recognisesGzipByMagicBytesNotByName() throws Exception {
        Path images = IdxFixtures.write(dir.resolve("images-no-ext"), IdxFixtures.imagesBytes(2, 2, 2), true);
        Path labels = IdxFixtures.write(dir.resolve("labels.gz"), IdxFixtures.labelsBytes(0, 1), false);
        IdxImages data = IdxReader.read(images, labels);
        assertEquals(2, data.count());
        assertEquals(IdxFixtures.pixel(1, 1), data.image(1)[3] & 0xFF);
    }

    @Test
    void hashesTheFileBytesAsStored() throws Exception {
        Path[] gz = IdxFixtures.writePair(dir, "gz", 2, 2, true, 0, 1);
        IdxImages data = IdxReader.read(gz[0], gz[1]);
        MessageDigest sha = MessageDigest.getInstance("SHA-256");
        assertEquals(HexFormat.of().formatHex(sha.digest(Files.readAllBytes(gz[0]))), data.imagesSha256());
        assertEquals(HexFormat.of().formatHex(sha.digest(Files.readAllBytes(gz[1]))), data.labelsSha256());
    }

    @Test
    void truncatedFileNamesFileAndExpectedVersusFoundBytes() throws Exception {
        byte[] whole = IdxFixtures.imagesBytes(2, 28, 28);
        Path images = IdxFixtures.write(dir.resolve("cut-images-idx3-ubyte"), Arrays.copyOf(whole, 16 + 1000), false);
        Path labels = IdxFixtures.write(dir.resolve("labels"), IdxFixtures.labelsBytes(0, 1), false);

        DataException e = assertThrows(DataException.class, () -> IdxReader.read(images, labels));

        assertEquals(ErrorKind.DATA, e.kind());
        assertEquals(
                images + ": is truncated: expected 1568 bytes (2 images of 28x28 after the 16-byte header), found 1000;"
                        + " re-download or re-extract the file",
                e.getMessage());
    }

    @Test
    void truncatedGzipReportsDecompressedBytesFound() throws Exception {
        byte[] gz = IdxFixtures.gzip(IdxFixtures.imagesBytes(50, 28, 28));
        Path images = IdxFixtures.write(dir.resolve("cut.gz"), Arrays.copyOf(gz, gz.length / 2), false);
        Path labels = IdxFixtures.write(dir.resolve("labels"), IdxFixtures.labelsBytes(new int[50]), false);

        DataException e = assertThrows(DataException.class, () -> IdxReader.read(images, labels));

        assertStartsWith(images + ": is truncated: expected 39200 bytes (50 images of 28x28", e.getMessage());
    }

    @Test
    void headerShorterThanItselfIsReported() throws Exception {
        Path images = IdxFixtures.write(dir.resolve("short"), new byte[] {0, 0, 8, 3, 0, 0}, false);
        Path labels = IdxFixtures.write(dir.resolve("labels"), IdxFixtures.labelsBytes(0), false);
        DataException e = assertThrows(DataException.class, () -> IdxReader.read(images, labels));
        assertEquals(images + ": is shorter than the 16-byte IDX header; re-download the file", e.getMessage());
    }

    @Test
    void headerClaimingBillionsOfImagesFailsWithoutAllocatingThem() throws Exception {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        DataOutputStream out = new DataOutputStream(bytes);
        out.writeInt(IdxReader.IMAGES_MAGIC);
        out.writeInt(0xFFFFFFF0); // 4294967280 images
        out.writeInt(28);
        out.writeInt(28);
        out.write(new byte[784 * 3]);
        Path plain = IdxFixtures.write(dir.resolve("huge"), bytes.toByteArray(), false);
        Path gz = IdxFixtures.write(dir.resolve("huge.gz"), bytes.toByteArray(), true);
        Path labels = IdxFixtures.write(dir.resolve("labels"), IdxFixtures.labelsBytes(0), false);

        assertTimeoutPreemptively(Duration.ofSeconds(10), () -> {
            DataException p = assertThrows(DataException.class, () -> IdxReader.read(plain, labels));
            assertEquals(
                    plain + ": is truncated: expected 3367254347520 bytes (4294967280 images of 28x28 after the"
                            + " 16-byte header), found 2352; re-download or re-extract the file",
                    p.getMessage());
            DataException g = assertThrows(DataException.class, () -> IdxReader.read(gz, labels));
            assertStartsWith(gz + ": is truncated: expected 3367254347520 bytes", g.getMessage());
            assertTrue(g.getMessage().contains("found 2352"), g.getMessage());
        });
    }

    @Test
    void extraBytesAfterThePayloadAreRejected() throws Exception {
        byte[] whole = IdxFixtures.imagesBytes(1, 2, 2);
        Path images = IdxFixtures.write(dir.resolve("long.gz"), Arrays.copyOf(whole, whole.length + 5), true);
        Path labels = IdxFixtures.write(dir.resolve("labels"), IdxFixtures.labelsBytes(0), false);
        DataException e = assertThrows(DataException.class, () -> IdxReader.read(images, labels));
        assertStartsWith(images + ": is longer than its header says: expected 4 bytes", e.getMessage());
    }

    @Test
    void badMagicIsNamed() throws Exception {
        byte[] bytes = IdxFixtures.imagesBytes(1, 2, 2);
        bytes[0] = 0x12;
        bytes[1] = 0x34;
        Path images = IdxFixtures.write(dir.resolve("notidx.png"), bytes, false);
        Path labels = IdxFixtures.write(dir.resolve("labels"), IdxFixtures.labelsBytes(0), false);

        DataException e = assertThrows(DataException.class, () -> IdxReader.read(images, labels));

        assertEquals(
                images + ": does not start with the IDX images magic number 0x00000803 (found 0x12340803); it is not an"
                        + " IDX images file (*-images-idx3-ubyte, plain or gzipped)",
                e.getMessage());
    }

    @Test
    void swappedFilesSayWhichIsWhich() throws Exception {
        Path[] pair = IdxFixtures.writePair(dir, "x", 2, 2, false, 0);
        DataException e = assertThrows(DataException.class, () -> IdxReader.read(pair[1], pair[0]));
        assertEquals(
                pair[1] + ": is an IDX labels file (magic 0x00000801) where an images file was expected; pass the"
                        + " *-images-idx3-ubyte file here",
                e.getMessage());
    }

    @Test
    void nonByteDataTypeIsNamed() throws Exception {
        byte[] bytes = IdxFixtures.imagesBytes(1, 2, 2);
        bytes[2] = 0x0D; // float
        Path images = IdxFixtures.write(dir.resolve("float"), bytes, false);
        Path labels = IdxFixtures.write(dir.resolve("labels"), IdxFixtures.labelsBytes(0), false);
        DataException e = assertThrows(DataException.class, () -> IdxReader.read(images, labels));
        assertEquals(
                images + ": stores IDX data type 0x0D; only unsigned-byte IDX files (magic 0x00000803) are supported",
                e.getMessage());
    }

    @Test
    void imageAndLabelCountsMustAgree() throws Exception {
        Path images = IdxFixtures.write(dir.resolve("i"), IdxFixtures.imagesBytes(3, 2, 2), false);
        Path labels = IdxFixtures.write(dir.resolve("l"), IdxFixtures.labelsBytes(0, 1), false);

        DataException e = assertThrows(DataException.class, () -> IdxReader.read(images, labels));

        assertEquals(
                labels + ": has 2 labels but " + images + " has 3 images; use the labels file that belongs to the"
                        + " images file (train-* with train-*, t10k-* with t10k-*)",
                e.getMessage());
    }

    @Test
    void missingFileAndEmptyFileAndZeroSizeImages() throws Exception {
        Path labels = IdxFixtures.write(dir.resolve("l"), IdxFixtures.labelsBytes(0), false);
        Path missing = dir.resolve("nope-images-idx3-ubyte");
        DataException e = assertThrows(DataException.class, () -> IdxReader.read(missing, labels));
        assertEquals(
                missing + ": does not exist; expected an IDX images file (*-images-idx3-ubyte)", e.getMessage());

        Path none = IdxFixtures.write(dir.resolve("none"), IdxFixtures.imagesBytes(0, 2, 2), false);
        e = assertThrows(DataException.class, () -> IdxReader.read(none, labels));
        assertEquals(none + ": contains no images (its header says 0); use a non-empty file", e.getMessage());

        Path flat = IdxFixtures.write(dir.resolve("flat"), IdxFixtures.imagesBytes(1, 0, 2), false);
        e = assertThrows(DataException.class, () -> IdxReader.read(flat, labels));
        assertEquals(flat + ": has an image size of 0x2; rows and columns must be > 0", e.getMessage());
    }

    @Test
    void damagedGzipHeaderIsReported() throws Exception {
        byte[] gz = IdxFixtures.gzip(IdxFixtures.imagesBytes(1, 2, 2));
        gz[gz.length - 8] ^= 0x55; // break the CRC-32 in the trailer
        Path images = IdxFixtures.write(dir.resolve("bad.gz"), gz, false);
        Path labels = IdxFixtures.write(dir.resolve("l"), IdxFixtures.labelsBytes(0), false);
        DataException e = assertThrows(DataException.class, () -> IdxReader.read(images, labels));
        assertStartsWith(images + ": is a damaged gzip file (", e.getMessage());
        assertNotEquals(null, e.getCause());
    }

    private static void assertStartsWith(String prefix, String actual) {
        assertTrue(actual.startsWith(prefix), () -> "expected to start with\n  " + prefix + "\nbut was\n  " + actual);
    }
}
