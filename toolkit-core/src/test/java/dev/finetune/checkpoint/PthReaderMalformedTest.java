package dev.finetune.checkpoint;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@link PthReader} on hand-made broken or unusual files; needs no Python. */
class PthReaderMalformedTest {
    @TempDir
    Path dir;

    Path good;

    @BeforeEach
    void writeGoodFile() {
        good = dir.resolve("good.pth");
        LinkedHashMap<String, HostTensor> tensors = new LinkedHashMap<>();
        tensors.put("w", HostTensor.of(new long[] {2, 3}, new float[] {1, 2, 3, 4, 5, 6}));
        tensors.put("n", new HostTensor("I64", new long[0], new float[] {7}));
        PthWriter.write(good, tensors);
    }

    @Test
    void notAZip() throws IOException {
        Path file = dir.resolve("notes.pth");
        Files.writeString(file, "these are not weights\n");

        assertProblem(file, "not a zip archive", () -> new PthReader().read(file));
        assertProblem(file, "unknown checkpoint format; supported formats: PyTorch .pth zip", () -> Checkpoints.read(file));
    }

    @Test
    void zipWithoutDataPkl() throws IOException {
        Path file = dir.resolve("other.zip");
        TestFiles.writeZip(file, Map.of("stuff/readme.txt", "hi".getBytes(StandardCharsets.US_ASCII)));

        assertProblem(file, "a zip archive without <archive>/data.pkl", () -> new PthReader().read(file));
        assertProblem(file, "is a zip archive without <archive>/data.pkl", () -> Checkpoints.read(file));
    }

    @Test
    void truncatedZip() throws IOException {
        Path file = dir.resolve("cut.pth");
        byte[] whole = Files.readAllBytes(good);
        Files.write(file, Arrays.copyOf(whole, whole.length - 30));

        assertProblem(file, "truncated or corrupt zip archive", () -> new PthReader().read(file));
    }

    @Test
    void storageEntryShorterThanClaimed() throws IOException {
        Path file = dir.resolve("short.pth");
        // Entry names keep the archive folder of the original file, "good".
        TestFiles.rewriteZip(good, file, (name, bytes) ->
                name.equals("good/data/0") ? Arrays.copyOf(bytes, 8) : bytes);

        assertProblem(file, "storage good/data/0 holds 8 bytes but data.pkl claims 6 x F32 = 24 bytes",
                () -> new PthReader().read(file));
    }

    @Test
    void missingStorageEntry() throws IOException {
        Path file = dir.resolve("missing.pth");
        TestFiles.rewriteZip(good, file, (name, bytes) -> name.equals("good/data/1") ? null : bytes);

        assertProblem(file, "storage good/data/1 named by data.pkl is missing", () -> new PthReader().read(file));
    }

    @Test
    void corruptPickle() throws IOException {
        Path file = dir.resolve("corrupt.pth");
        TestFiles.rewriteZip(good, file, (name, bytes) ->
                name.equals("good/data.pkl") ? Arrays.copyOf(bytes, bytes.length - 2) : bytes);

        assertProblem(file, "data.pkl", () -> new PthReader().read(file));
    }

    @Test
    void bigEndianFileIsReadInItsByteOrder() throws IOException {
        Path file = dir.resolve("big.pth");
        TestFiles.rewriteZip(good, file, (name, bytes) -> switch (name) {
            case "good/byteorder" -> "big".getBytes(StandardCharsets.US_ASCII);
            case "good/data/0" -> swap(bytes, 4);
            case "good/data/1" -> swap(bytes, 8);
            default -> bytes;
        });

        Checkpoint checkpoint = new PthReader().read(file);
        assertArrayEquals(new float[] {1, 2, 3, 4, 5, 6}, checkpoint.tensors().get("w").data());
        assertArrayEquals(new float[] {7}, checkpoint.tensors().get("n").data());
        assertEquals("big", checkpoint.metadata().get("byteorder"));
    }

    @Test
    void unknownByteOrder() throws IOException {
        Path file = dir.resolve("odd.pth");
        TestFiles.rewriteZip(good, file, (name, bytes) ->
                name.equals("good/byteorder") ? "middle".getBytes(StandardCharsets.US_ASCII) : bytes);

        assertProblem(file, "good/byteorder says 'middle'", () -> new PthReader().read(file));
    }

    @Test
    void viewReachingPastItsStorage() throws IOException {
        // The pickle says storage 0 has 6 elements but a 2x4 tensor; rewrite the shape tuple (2, 3) -> (2, 4).
        Path file = dir.resolve("past.pth");
        TestFiles.rewriteZip(good, file, (name, bytes) -> name.equals("good/data.pkl") ? replace(bytes,
                new byte[] {'K', 0, 'K', 2, 'K', 3, (byte) 0x86, 'K', 3, 'K', 1, (byte) 0x86},
                new byte[] {'K', 0, 'K', 2, 'K', 4, (byte) 0x86, 'K', 3, 'K', 1, (byte) 0x86}) : bytes);

        assertProblem(file, "tensor 'w' (offset 0, shape [2, 4], stride [3, 1]) reaches element 6 of storage 0,"
                + " which holds 6", () -> new PthReader().read(file));
    }

    @Test
    void zeroStrideExpansionIsRefusedBeforeAllocating() throws IOException {
        // shape (2, 3) stride (3, 1) -> shape (40000, 40000) stride (0, 0): 1.6e9 values over a 6-element storage.
        Path file = dir.resolve("expanded.pth");
        TestFiles.rewriteZip(good, file, (name, bytes) -> name.equals("good/data.pkl") ? replace(bytes,
                new byte[] {'K', 2, 'K', 3, (byte) 0x86, 'K', 3, 'K', 1, (byte) 0x86},
                new byte[] {'M', 0x40, (byte) 0x9c, 'M', 0x40, (byte) 0x9c, (byte) 0x86, 'K', 0, 'K', 0, (byte) 0x86})
                : bytes);

        assertProblem(file, "tensor 'w' is 1600000000 values); refusing to allocate them",
                () -> new PthReader().read(file));
    }

    @Test
    void missingEmptyAndDirectory() throws IOException {
        Path missing = dir.resolve("nope.pth");
        assertProblem(missing, "no such file", () -> Checkpoints.read(missing));
        assertProblem(missing, "no such file", () -> new PthReader().read(missing));
        Path empty = Files.createFile(dir.resolve("empty.pth"));
        assertProblem(empty, "is empty", () -> Checkpoints.read(empty));
        assertProblem(dir, "is a directory", () -> Checkpoints.read(dir));
    }

    private static void assertProblem(Path file, String problem, Runnable read) {
        CheckpointException e = assertThrows(CheckpointException.class, read::run);
        assertTrue(e.getMessage().startsWith(file + ": "), e.getMessage());
        assertTrue(e.getMessage().contains(problem), e.getMessage());
    }

    private static byte[] swap(byte[] bytes, int width) {
        ByteBuffer in = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        ByteBuffer out = ByteBuffer.allocate(bytes.length).order(ByteOrder.BIG_ENDIAN);
        for (int i = 0; i < bytes.length; i += width) {
            if (width == 4) {
                out.putInt(in.getInt(i));
            } else {
                out.putLong(in.getLong(i));
            }
        }
        return out.array();
    }

    /** Replaces the first occurrence of {@code from}; pickles have no offsets, so lengths may differ. */
    private static byte[] replace(byte[] bytes, byte[] from, byte[] to) {
        outer:
        for (int i = 0; i + from.length <= bytes.length; i++) {
            for (int j = 0; j < from.length; j++) {
                if (bytes[i + j] != from[j]) {
                    continue outer;
                }
            }
            byte[] copy = new byte[bytes.length - from.length + to.length];
            System.arraycopy(bytes, 0, copy, 0, i);
            System.arraycopy(to, 0, copy, i, to.length);
            System.arraycopy(bytes, i + from.length, copy, i + to.length, bytes.length - i - from.length);
            return copy;
        }
        throw new AssertionError("pattern not found in pickle");
    }
}
