package dev.finetune.fuzz;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.finetune.checkpoint.CheckpointFormat;
import dev.finetune.checkpoint.Checkpoints;
import dev.finetune.checkpoint.HostTensor;
import dev.finetune.checkpoint.SafetensorsReader;
import dev.finetune.checkpoint.SafetensorsWriter;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link Checkpoints#read(Path)} and {@link SafetensorsReader} on hostile safetensors files and on hostile copies of
 * this toolkit's own checkpoints (safetensors marked {@code format: finetune-checkpoint}): a hand-made corpus of
 * header lies, every truncation, and seeded random mutations of files {@link SafetensorsWriter} wrote.
 */
class SafetensorsFuzzTest {
    private static final long SAFETENSORS_SEED = 0x5EED_0003L;
    private static final long FINETUNE_SEED = 0x5EED_0004L;

    @TempDir
    Path dir;

    private static final Map<String, Function<Path, ?>> READERS = Corpus.readers(
            "Checkpoints.read", (Function<Path, ?>) Checkpoints::read,
            "SafetensorsReader.read", (Function<Path, ?>) f -> new SafetensorsReader().read(f));

    @Test
    void handMadeCorpus() throws IOException {
        String w = "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
        Corpus corpus = new Corpus()
                .error("zero-length", "is empty | too short for safetensors", f -> Files.write(f, new byte[0]))
                .error("7 bytes", "unknown checkpoint format | too short for safetensors",
                        f -> Files.write(f, new byte[] {2, 0, 0, 0, 0, 0, 0}))
                .error("a link to /dev/zero", "unknown checkpoint format | is 0 bytes",
                        f -> Files.createSymbolicLink(f, Path.of("/dev/zero")))
                .error("header length 2^63", "unknown checkpoint format | header length 9223372036854775808",
                        f -> Files.write(f, withLength(Long.MIN_VALUE, w, 8)))
                .error("header length 2^63-1", "header length 9223372036854775807 (first 8 bytes) runs past the end",
                        f -> Files.write(f, withLength(Long.MAX_VALUE, w, 8)))
                .error("header length one past the end", "runs past the end", f -> {
                    byte[] json = w.getBytes(StandardCharsets.UTF_8);
                    Files.write(f, withLength(json.length + 1, w, 0));
                })
                .error("header length 0", "unknown checkpoint format | too small for {}",
                        f -> Files.write(f, withLength(0, "{}", 0)))
                .error("header length 1", "unknown checkpoint format | too small for {}",
                        f -> Files.write(f, withLength(1, "{}", 0)))
                .error("header length 101 MB in a sparse file", "exceeds the 104857600-byte limit", f -> {
                    Files.write(f, withLength(101L << 20, "{", 0));
                    try (RandomAccessFile raf = new RandomAccessFile(f.toFile(), "rw")) {
                        raf.setLength(8 + (101L << 20)); // sparse: costs no disk
                    }
                })
                .error("header not JSON", "not valid JSON", f -> Files.write(f, st("{nope", 0)))
                .error("header is a JSON array", "unknown checkpoint format | does not start with '{'",
                        f -> Files.write(f, st("[1,2]", 0)))
                .error("trailing tokens after the header", "not valid JSON", f -> Files.write(f, st("{} []", 0)))
                .error("header padded with NULs", "not valid JSON", f -> Files.write(f, st("{}\0\0\0\0\0\0", 0)))
                .error("duplicate tensor name", "not valid JSON", f -> Files.write(f, st("{"
                        + "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                        + "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8)))
                .error("JSON nested 100,000 deep", "not valid JSON", f -> Files.write(f, st("{\"w\":"
                        + "[".repeat(100_000) + "]".repeat(100_000) + "}", 0)))
                .error("100,000-digit offset", "not valid JSON | data_offsets[1]", f -> Files.write(f, st(
                        "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0," + "9".repeat(100_000) + "]}}",
                        8)))
                .error("offset 2^64", "data_offsets[1] is 18446744073709551616", f -> Files.write(f, st(
                        "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,18446744073709551616]}}", 8)))
                .error("negative offset", "data_offsets[0] is -8", f -> Files.write(f, st(
                        "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}", 8)))
                .error("offsets end before they begin", "end before they begin", f -> Files.write(f, st(
                        "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8)))
                .error("three offsets", "data_offsets is missing or not an array of 2 integers", f -> Files.write(f,
                        st("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4,8]}}", 8)))
                .error("offsets as strings", "data_offsets[0] is \"0\"", f -> Files.write(f, st(
                        "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[\"0\",\"8\"]}}", 8)))
                .error("negative dimension", "shape[0] is -2", f -> Files.write(f, st(
                        "{\"w\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8)))
                .error("fractional dimension", "shape[0] is 2.0", f -> Files.write(f, st(
                        "{\"w\":{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}}", 8)))
                .error("shape overflows a long", "shape [4294967296, 4294967296, 4294967296] overflows", f ->
                        Files.write(f, st("{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],"
                                + "\"data_offsets\":[0,8]}}", 8)))
                .error("100 GB tensor in 16 bytes", "run past the end of the data section, which holds 16 bytes",
                        f -> Files.write(f, st("{\"w\":{\"dtype\":\"F32\",\"shape\":[25000000000],"
                                + "\"data_offsets\":[0,100000000000]}}", 16)))
                .error("shape and offsets disagree", "needs 8 bytes but its data_offsets [0, 4] span 4",
                        f -> Files.write(f, st("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 8)))
                .error("overlapping tensors", "overlap in the data section", f -> Files.write(f, st("{"
                        + "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                        + "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12)))
                .error("two tensors on the same bytes", "overlap in the data section", f -> Files.write(f, st("{"
                        + "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                        + "\"b\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8)))
                .ok("empty tensor inside another's bytes", f -> Files.write(f, st("{"
                        + "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                        + "\"b\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[4,4]}}", 8)))
                .error("unknown dtype", "unsupported dtype 'F8_E4M3'", f -> Files.write(f, st(
                        "{\"w\":{\"dtype\":\"F8_E4M3\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2)))
                .error("lower-case dtype", "unsupported dtype 'f32'", f -> Files.write(f, st(
                        "{\"w\":{\"dtype\":\"f32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8)))
                .error("dtype as a number", "has no dtype string", f -> Files.write(f, st(
                        "{\"w\":{\"dtype\":4,\"shape\":[2],\"data_offsets\":[0,8]}}", 8)))
                .error("tensor entry is a string", "is not a JSON object", f -> Files.write(f,
                        st("{\"w\":\"F32\"}", 0)))
                .error("tensor entry is null", "is not a JSON object", f -> Files.write(f, st("{\"w\":null}", 0)))
                .error("metadata is a list", "__metadata__ is not a JSON object", f -> Files.write(f,
                        st("{\"__metadata__\":[1]}", 0)))
                .error("metadata value is a number", "__metadata__.step is not a string", f -> Files.write(f,
                        st("{\"__metadata__\":{\"format\":\"finetune-checkpoint\",\"step\":3}}", 0)))
                .ok("tensor names with NUL, quotes and an empty name", f -> Files.write(f, st("{"
                        + "\"\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                        + "\"a\\u0000b\\\"c\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}", 2)))
                .ok("50,000 empty tensors", f -> {
                    StringBuilder b = new StringBuilder("{");
                    for (int i = 0; i < 50_000; i++) {
                        b.append(i == 0 ? "" : ",").append("\"t").append(i)
                                .append("\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}");
                    }
                    Files.write(f, st(b.append('}').toString(), 0));
                })
                .error("3 GB U8 tensor the sparse file really has", "more than the 2147483631 a JVM array holds",
                        f -> {
                            Files.write(f, st("{\"w\":{\"dtype\":\"U8\",\"shape\":[3000000000],"
                                    + "\"data_offsets\":[0,3000000000]}}", 0));
                            try (RandomAccessFile raf = new RandomAccessFile(f.toFile(), "rw")) {
                                raf.setLength(raf.length() + 3_000_000_000L);
                            }
                        })
                .ok("finetune marker with odd metadata", f -> Files.write(f, st("{\"__metadata__\":{\"format\":"
                        + "\"finetune-checkpoint\",\"\":\"\",\"x\\u0000\":\"\\ud83d\\ude00\"},"
                        + "\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8)));
        corpus.run("safetensors", dir, ".safetensors", READERS);
    }

    @Test
    void seedsAreValid() throws IOException {
        assertEquals(CheckpointFormat.SAFETENSORS, Checkpoints.read(seed("plain.safetensors", "F32", false)).format());
        assertEquals(CheckpointFormat.SAFETENSORS, Checkpoints.read(seed("half.safetensors", "F16", false)).format());
        assertEquals(CheckpointFormat.FINETUNE, Checkpoints.read(seed("own.safetensors", "F32", true)).format());
    }

    @Test
    void truncatedAtEveryOffset() throws IOException {
        Path file = dir.resolve("cut.safetensors");
        try (FuzzRun run = new FuzzRun("safetensors truncations")) {
            for (Path seed : List.of(seed("plain.safetensors", "F32", false), seed("own.safetensors", "F32", true))) {
                byte[] whole = Files.readAllBytes(seed);
                for (int n = 0; n < whole.length; n++) {
                    Files.write(file, Arrays.copyOf(whole, n));
                    FuzzRun.Outcome o = run.attempt(seed.getFileName() + " cut to " + n, List.of(file),
                            () -> Checkpoints.read(file));
                    assertTrue(o.kind() != FuzzRun.Kind.OK, seed.getFileName() + " cut to " + n + " must not read");
                }
            }
            run.report();
        }
    }

    @Test
    void mutatedSafetensors() throws IOException {
        mutate("safetensors", SAFETENSORS_SEED, 300,
                seed("plain.safetensors", "F32", false), seed("half.safetensors", "F16", false));
    }

    @Test
    void mutatedFinetuneCheckpoints() throws IOException {
        mutate("finetune", FINETUNE_SEED, 400, seed("own.safetensors", "F32", true));
    }

    private void mutate(String format, long runSeed, int perSeed, Path... seeds) throws IOException {
        Path file = dir.resolve("mutant.safetensors");
        try (FuzzRun run = new FuzzRun(format)) {
            for (Path seed : seeds) {
                Mutator mutator = new Mutator(Files.readAllBytes(seed), runSeed + seed.getFileName().hashCode());
                for (int i = 0; i < perSeed; i++) {
                    Mutator.Mutant m = mutator.mutant(i);
                    Files.write(file, m.bytes());
                    run.attempt(seed.getFileName() + " " + m.describe(), List.of(file), () -> Checkpoints.read(file));
                }
            }
            run.report();
            assertTrue(run.ok() > 0 && run.clean() > 0, "the mutations should produce both outcomes");
        }
    }

    /** A small checkpoint as the toolkit writes it: conv, BN (with an I64 counter) and head tensors. */
    private Path seed(String name, String dtype, boolean finetune) {
        LinkedHashMap<String, HostTensor> tensors = new LinkedHashMap<>();
        float[] conv = new float[18];
        for (int i = 0; i < conv.length; i++) {
            conv[i] = (i - 9) * 0.125f;
        }
        tensors.put("conv1.weight", HostTensor.of(new long[] {2, 1, 3, 3}, conv));
        tensors.put("bn1.running_var", HostTensor.of(new long[] {2}, new float[] {0.5f, 2f}));
        tensors.put("bn1.num_batches_tracked", new HostTensor("I64", new long[0], new float[] {7}));
        tensors.put("fc.weight", HostTensor.of(new long[] {3, 2}, new float[] {1, -1, 0.25f, 4, 0, -0.5f}));
        Map<String, String> metadata = finetune
                ? Map.of(Checkpoints.FORMAT_KEY, Checkpoints.FINETUNE_FORMAT, "step", "120", "version", "1")
                : Map.of("source", "fuzz seed");
        Path file = dir.resolve(name);
        SafetensorsWriter.write(file, tensors, new java.util.TreeMap<>(metadata), dtype);
        return file;
    }

    /** A safetensors file with this header (its true length) and {@code dataBytes} zero bytes of data. */
    private static byte[] st(String header, int dataBytes) {
        byte[] json = header.getBytes(StandardCharsets.UTF_8);
        return withLength(json.length, header, dataBytes);
    }

    /** A safetensors file whose first 8 bytes claim {@code length}, whatever the header really is. */
    private static byte[] withLength(long length, String header, int dataBytes) {
        byte[] json = header.getBytes(StandardCharsets.UTF_8);
        return ByteBuffer.allocate(8 + json.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN)
                .putLong(length).put(json).array();
    }
}
