package dev.finetune.checkpoint;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@link SafetensorsWriter} and {@link SafetensorsReader}: round trips, the exact layout, and hostile headers. */
class SafetensorsTest {
    @TempDir
    Path dir;

    static LinkedHashMap<String, HostTensor> sample() {
        LinkedHashMap<String, HostTensor> tensors = new LinkedHashMap<>();
        tensors.put("conv1.weight", HostTensor.of(new long[] {2, 1, 1, 2}, new float[] {0.1f, -2.5f, 3e-8f, 65536f}));
        tensors.put("bn1.num_batches_tracked", new HostTensor("I64", new long[0], new float[] {12345}));
        tensors.put("empty", HostTensor.of(new long[] {0, 4}, new float[0]));
        tensors.put("flags", new HostTensor("BOOL", new long[] {3}, new float[] {1, 0, 1}));
        tensors.put("fc.bias", new HostTensor("BF16", new long[] {1}, new float[] {0.5f}));
        return tensors;
    }

    @Test
    void f32RoundTripKeepsOrderValuesAndMetadata() {
        Path file = dir.resolve("model.safetensors");
        SafetensorsWriter.write(file, sample(), Map.of("step", "10"), "F32");

        Checkpoint checkpoint = Checkpoints.read(file);
        assertEquals(CheckpointFormat.SAFETENSORS, checkpoint.format());
        assertEquals(new ArrayList<>(sample().keySet()), new ArrayList<>(checkpoint.tensors().keySet()));
        for (Map.Entry<String, HostTensor> e : sample().entrySet()) {
            HostTensor read = checkpoint.tensors().get(e.getKey());
            assertArrayEquals(e.getValue().shape(), read.shape(), e.getKey());
            assertArrayEquals(e.getValue().data(), read.data(), e.getKey());
        }
        assertEquals("I64", checkpoint.tensors().get("bn1.num_batches_tracked").sourceDtype());
        assertEquals("BOOL", checkpoint.tensors().get("flags").sourceDtype());
        assertEquals("F32", checkpoint.tensors().get("fc.bias").sourceDtype());
        assertEquals(Map.of("step", "10"), checkpoint.metadata());
    }

    /**
     * Entries read as the writer reaches them ({@link TensorEntry}, what training checkpoints use) give the same bytes
     * as tensors copied up front; each is read once, in order, after the previous one was written; and an entry whose
     * values do not fit its shape fails the write and leaves no file (the header was already computed from shapes).
     */
    @Test
    void entriesReadOneAtATimeWriteTheSameBytes() throws IOException {
        Path eager = dir.resolve("eager.safetensors");
        Path lazy = dir.resolve("lazy.safetensors");
        SafetensorsWriter.write(eager, sample(), Map.of("k", "v"), "F32");
        List<String> reads = new ArrayList<>();
        LinkedHashMap<String, TensorEntry> entries = new LinkedHashMap<>();
        sample().forEach((name, t) -> entries.put(name, new TensorEntry(t.sourceDtype(), t.shape(), () -> {
            reads.add(name);
            return t.data();
        })));
        assertTrue(reads.isEmpty());
        SafetensorsWriter.writeEntries(lazy, entries, Map.of("k", "v"), "F32");
        assertEquals(new ArrayList<>(sample().keySet()), reads, "each entry read once, in the file's order");
        assertArrayEquals(Files.readAllBytes(eager), Files.readAllBytes(lazy));

        Path bad = dir.resolve("bad.safetensors");
        LinkedHashMap<String, TensorEntry> wrong = new LinkedHashMap<>(entries);
        wrong.put("short", TensorEntry.f32(new long[] {3}, () -> new float[2]));
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> SafetensorsWriter.writeEntries(bad, wrong, Map.of(), "F32"));
        assertTrue(e.getMessage().contains("[3]"), e.getMessage());
        assertTrue(!Files.exists(bad), "no partial file");
        try (var left = Files.list(dir)) {
            assertTrue(left.noneMatch(f -> f.getFileName().toString().startsWith(".bad")), "no temporary file");
        }
    }

    @Test
    void f16StoresFloatsAsHalfAndKeepsIntegers() {
        Path file = dir.resolve("half.safetensors");
        SafetensorsWriter.write(file, sample(), Map.of(), "F16");

        Checkpoint checkpoint = new SafetensorsReader().read(file);
        HostTensor w = checkpoint.tensors().get("conv1.weight");
        assertEquals("F16", w.sourceDtype());
        float[] expected = new float[4];
        for (int i = 0; i < 4; i++) {
            expected[i] = Dtype.halfToFloat(Dtype.floatToHalf(sample().get("conv1.weight").data()[i]));
        }
        assertArrayEquals(expected, w.data());
        assertEquals("I64", checkpoint.tensors().get("bn1.num_batches_tracked").sourceDtype());
        assertArrayEquals(new float[] {12345}, checkpoint.tensors().get("bn1.num_batches_tracked").data());
        assertTrue(checkpoint.metadata().isEmpty());
    }

    @Test
    void finetuneMetadataMakesAFinetuneCheckpoint() {
        Path file = dir.resolve("run.ckpt");
        SafetensorsWriter.write(file, sample(), Map.of(Checkpoints.FORMAT_KEY, Checkpoints.FINETUNE_FORMAT), "F32");

        assertEquals(CheckpointFormat.FINETUNE, Checkpoints.detect(file));
        assertEquals(CheckpointFormat.FINETUNE, Checkpoints.read(file).format());
    }

    @Test
    void layoutIsExactlyTheSafetensorsLayout() throws IOException {
        Path file = dir.resolve("golden.safetensors");
        LinkedHashMap<String, HostTensor> tensors = new LinkedHashMap<>();
        tensors.put("b", HostTensor.of(new long[] {2}, new float[] {1f, -2f}));
        tensors.put("a", new HostTensor("I64", new long[0], new float[] {3}));
        SafetensorsWriter.write(file, tensors, Map.of("k", "v"), "F32");

        String json = "{\"__metadata__\":{\"k\":\"v\"},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                + "\"a\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[8,16]}}";
        int padded = (json.length() + 7) / 8 * 8;
        ByteBuffer want = ByteBuffer.allocate(8 + padded + 16).order(ByteOrder.LITTLE_ENDIAN);
        want.putLong(padded).put((json + " ".repeat(padded - json.length())).getBytes(StandardCharsets.UTF_8));
        want.putFloat(1f).putFloat(-2f).putLong(3);
        assertArrayEquals(want.array(), Files.readAllBytes(file));
        assertArrayEquals(Files.readAllBytes(file),
                Files.readAllBytes(resource("golden.safetensors")), "golden file in test resources");
    }

    @Test
    void readsEveryDtype() throws IOException {
        ByteBuffer data = ByteBuffer.allocate(64).order(ByteOrder.LITTLE_ENDIAN);
        data.putDouble(0.1).putShort((short) 0x3f80).putInt(-5).putShort((short) -300).put((byte) -7).put((byte) 250)
                .put((byte) 2).putShort(Dtype.floatToHalf(0.25f));
        Path file = craft("dtypes.safetensors", "{"
                + "\"f64\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]},"
                + "\"bf16\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[8,10]},"
                + "\"i32\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[10,14]},"
                + "\"i16\":{\"dtype\":\"I16\",\"shape\":[1],\"data_offsets\":[14,16]},"
                + "\"i8\":{\"dtype\":\"I8\",\"shape\":[1],\"data_offsets\":[16,17]},"
                + "\"u8\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[17,18]},"
                + "\"bool\":{\"dtype\":\"BOOL\",\"shape\":[1],\"data_offsets\":[18,19]},"
                + "\"f16\":{\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[19,21]}}", data.array());

        Map<String, HostTensor> t = new SafetensorsReader().read(file).tensors();
        assertArrayEquals(new float[] {0.1f}, t.get("f64").data());
        assertArrayEquals(new float[] {1f}, t.get("bf16").data());
        assertArrayEquals(new float[] {-5f}, t.get("i32").data());
        assertArrayEquals(new float[] {-300f}, t.get("i16").data());
        assertArrayEquals(new float[] {-7f}, t.get("i8").data());
        assertArrayEquals(new float[] {250f}, t.get("u8").data());
        assertArrayEquals(new float[] {1f}, t.get("bool").data());
        assertArrayEquals(new float[] {0.25f}, t.get("f16").data());
        assertEquals("BF16", t.get("bf16").sourceDtype());
    }

    @Test
    void headerLengthPastEndOfFile() throws IOException {
        Path file = dir.resolve("short.safetensors");
        Files.write(file, ByteBuffer.allocate(12).order(ByteOrder.LITTLE_ENDIAN).putLong(1000).put("{}  ".getBytes(
                StandardCharsets.US_ASCII)).array());
        assertProblem(file, "safetensors header length 1000 (first 8 bytes) runs past the end of the 12-byte file");
    }

    @Test
    void headerLengthOverTheCap() throws IOException {
        Path file = dir.resolve("huge-header.safetensors");
        long claimed = SafetensorsReader.MAX_HEADER_BYTES + 8;
        try (RandomAccessFile raf = new RandomAccessFile(file.toFile(), "rw")) {
            raf.setLength(8 + claimed); // sparse: costs no disk
            raf.write(ByteBuffer.allocate(9).order(ByteOrder.LITTLE_ENDIAN).putLong(claimed).put((byte) '{').array());
        }
        assertProblem(file, "exceeds the 104857600-byte limit");
    }

    @Test
    void overlappingTensors() throws IOException {
        Path file = craft("overlap.safetensors", "{"
                + "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                + "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", new byte[12]);
        assertProblem(file, "tensors 'a' [0, 8] and 'b' [4, 12] overlap");
    }

    @Test
    void hundredGigabyteClaimFailsWithoutAllocating() throws IOException {
        Path file = craft("claim.safetensors",
                "{\"w\":{\"dtype\":\"F32\",\"shape\":[25000000000],\"data_offsets\":[0,100000000000]}}", new byte[16]);
        assertProblem(file, "tensor 'w' data_offsets [0, 100000000000] run past the end of the data section, which"
                + " holds 16 bytes");
    }

    @Test
    void consistentButHugeTensorIsRefusedBeforeAllocating() throws IOException {
        // 3 GB of U8 that the (sparse) file really has: more values than a JVM array holds.
        String json = "{\"w\":{\"dtype\":\"U8\",\"shape\":[3000000000],\"data_offsets\":[0,3000000000]}}";
        Path file = craft("sparse.safetensors", json, new byte[0]);
        try (RandomAccessFile raf = new RandomAccessFile(file.toFile(), "rw")) {
            raf.setLength(raf.length() + 3_000_000_000L);
        }
        assertProblem(file, "tensor 'w' has 3000000000 values, more than the 2147483631 a JVM array holds");
    }

    @Test
    void badJson() throws IOException {
        Path file = craft("bad.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],", new byte[4]);
        assertProblem(file, "safetensors header is not valid JSON");
        Path dup = craft("dup.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                + "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", new byte[4]);
        assertProblem(dup, "safetensors header is not valid JSON");
    }

    @Test
    void unknownDtype() throws IOException {
        Path file = craft("f8.safetensors",
                "{\"w\":{\"dtype\":\"F8_E4M3\",\"shape\":[4],\"data_offsets\":[0,4]}}", new byte[4]);
        assertProblem(file, "tensor 'w' has unsupported dtype 'F8_E4M3' (supported: F64, F32, F16, BF16, I64, I32, "
                + "I16, I8, U8, BOOL)");
    }

    @Test
    void sizeNotMatchingShape() throws IOException {
        Path file = craft("size.safetensors",
                "{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", new byte[8]);
        assertProblem(file, "tensor 'w' of shape [3] and dtype F32 needs 12 bytes but its data_offsets [0, 8] span 8");
    }

    @Test
    void otherHeaderMistakes() throws IOException {
        assertProblem(craft("rev.safetensors", "{\"w\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[4,0]}}",
                new byte[4]), "data_offsets [4, 0] end before they begin");
        assertProblem(craft("neg.safetensors", "{\"w\":{\"dtype\":\"U8\",\"shape\":[-1],\"data_offsets\":[0,0]}}",
                new byte[4]), "tensor 'w' shape[0] is -1, expected a non-negative integer");
        assertProblem(craft("meta.safetensors", "{\"__metadata__\":{\"epoch\":3}}", new byte[0]),
                "__metadata__.epoch is not a string");
        // Content detection would not call these safetensors at all, so only the reader itself is asked.
        assertReaderProblem(craft("arr.safetensors", "[1, 2]", new byte[0]), "header does not start with '{'");
        Path tiny = dir.resolve("tiny.safetensors");
        Files.write(tiny, new byte[] {1, 2, 3});
        assertReaderProblem(tiny, "is 3 bytes, too short for safetensors");
    }

    @Test
    void rejectsBadWriterArguments() {
        Path file = dir.resolve("x.safetensors");
        assertThrows(IllegalArgumentException.class, () -> SafetensorsWriter.write(file, sample(), Map.of(), "BF16"));
        LinkedHashMap<String, HostTensor> bad = new LinkedHashMap<>();
        bad.put("__metadata__", HostTensor.of(new long[] {1}, new float[1]));
        assertThrows(IllegalArgumentException.class, () -> SafetensorsWriter.write(file, bad, Map.of(), "F32"));
    }

    private Path craft(String name, String json, byte[] data) throws IOException {
        byte[] header = json.getBytes(StandardCharsets.UTF_8);
        Path file = dir.resolve(name);
        Files.write(file, ByteBuffer.allocate(8 + header.length + data.length).order(ByteOrder.LITTLE_ENDIAN)
                .putLong(header.length).put(header).put(data).array());
        return file;
    }

    private static void assertProblem(Path file, String problem) {
        List<Runnable> reads = List.of(() -> new SafetensorsReader().read(file), () -> Checkpoints.read(file));
        for (Runnable read : reads) {
            CheckpointException e = assertThrows(CheckpointException.class, read::run);
            assertTrue(e.getMessage().startsWith(file + ": "), e.getMessage());
            assertTrue(e.getMessage().contains(problem), e.getMessage());
        }
    }

    private static void assertReaderProblem(Path file, String problem) {
        CheckpointException e = assertThrows(CheckpointException.class, () -> new SafetensorsReader().read(file));
        assertTrue(e.getMessage().startsWith(file + ": "), e.getMessage());
        assertTrue(e.getMessage().contains(problem), e.getMessage());
    }

    private static Path resource(String name) {
        try {
            return Path.of(SafetensorsTest.class.getResource("/checkpoint/" + name).toURI());
        } catch (java.net.URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }
}
