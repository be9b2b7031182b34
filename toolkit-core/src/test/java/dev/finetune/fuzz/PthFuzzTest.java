package dev.finetune.fuzz;

import static dev.finetune.fuzz.Pickle.APPEND;
import static dev.finetune.fuzz.Pickle.BINGET;
import static dev.finetune.fuzz.Pickle.BINPUT;
import static dev.finetune.fuzz.Pickle.DUP;
import static dev.finetune.fuzz.Pickle.EMPTY_DICT;
import static dev.finetune.fuzz.Pickle.EMPTY_LIST;
import static dev.finetune.fuzz.Pickle.EMPTY_TUPLE;
import static dev.finetune.fuzz.Pickle.LONG_BINGET;
import static dev.finetune.fuzz.Pickle.LONG_BINPUT;
import static dev.finetune.fuzz.Pickle.MARK;
import static dev.finetune.fuzz.Pickle.REDUCE;
import static dev.finetune.fuzz.Pickle.SETITEM;
import static dev.finetune.fuzz.Pickle.SETITEMS;
import static dev.finetune.fuzz.Pickle.STOP;
import static dev.finetune.fuzz.Pickle.TUPLE2;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.finetune.checkpoint.Checkpoint;
import dev.finetune.checkpoint.Checkpoints;
import dev.finetune.checkpoint.PthReader;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.function.Function;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link Checkpoints#read(Path)} and {@link PthReader} on hostile {@code .pth} files: a hand-made corpus, every
 * truncation of real torch.save files, and seeded random mutations of them (of the raw zip, and of the pickle inside
 * a well-formed zip, which is where the restricted unpickler is attacked).
 *
 * <p>The seeds (resources/fuzz/seed*.pth) come from torch 1.13's torch.save via scripts/fuzz/make_seed_pth.py.
 */
class PthFuzzTest {
    /** Fixed: the counts in SECURITY.md come from these seeds. */
    private static final long RAW_SEED = 0x5EED_0001L;
    private static final long PICKLE_SEED = 0x5EED_0002L;
    private static final int MUTANTS_PER_SEED = 400;
    private static final List<String> SEEDS = List.of("seed.pth", "seed_wrapped.pth");

    @TempDir
    Path dir;

    private static final Map<String, Function<Path, ?>> READERS = Corpus.readers(
            "Checkpoints.read", (Function<Path, ?>) Checkpoints::read,
            "PthReader.read", (Function<Path, ?>) f -> new PthReader().read(f));

    @Test
    void seedsAreValidCheckpoints() throws IOException {
        Path file = dir.resolve("seed.pth");
        Files.write(file, Corpus.resource("seed.pth"));
        Checkpoint c = Checkpoints.read(file);
        assertEquals(10, c.tensors().size());
        assertEquals("[2, 3]", c.tensors().get("fc.weight").shapeString());
        Files.write(file, Corpus.resource("seed_wrapped.pth"));
        assertEquals("state_dict", Checkpoints.read(file).metadata().get("wrapped_key"));
    }

    @Test
    void handMadeCorpus() throws IOException {
        Corpus corpus = new Corpus()
                .error("zero-length", "is empty | not a zip archive", f -> Files.write(f, new byte[0]))
                .error("PK only", "unknown checkpoint format | corrupt zip archive", f -> Files.writeString(f, "PK"))
                .error("empty zip", "unknown checkpoint format | without <archive>/data.pkl", f -> Files.write(f, emptyZip()))
                .error("zip local header then garbage", "corrupt zip", f -> Files.write(f,
                        concat(new byte[] {'P', 'K', 3, 4}, randomBytes(1, 300))))
                .any("random bytes", f -> Files.write(f, randomBytes(2, 4096)))
                .error("legacy pickle magic", "legacy torch.save pickle",
                        f -> Files.write(f, new byte[] {(byte) 0x80, 2, (byte) 0x8a, 0x0a}))
                .error("zip without data.pkl", "without <archive>/data.pkl", f -> Pickle.writeZip(f,
                        Map.of("weights/readme.txt", "hi".getBytes(StandardCharsets.US_ASCII)), ZipEntry.STORED))
                .error("two archives", "holds several archives", f -> Pickle.writeZip(f, Map.of(
                        "a/data.pkl", Pickle.oneTensor("w"), "b/data.pkl", Pickle.oneTensor("w")), ZipEntry.STORED))
                .error("TorchScript archive", "TorchScript", f -> Pickle.writeZip(f, Map.of(
                        "m/data.pkl", Pickle.oneTensor("w"), "m/constants.pkl", new byte[] {(byte) 0x80, 2, ')', '.'},
                        "m/code/__torch__.py", "def forward(self): ...".getBytes(StandardCharsets.US_ASCII)),
                        ZipEntry.STORED))
                .error("a link to /dev/zero", "unknown checkpoint format | not a zip archive",
                        f -> Files.createSymbolicLink(f, Path.of("/dev/zero")))
                .ok("hand-made valid file", f -> pth(f, Pickle.oneTensor("w"), 2))
                // Sizes that a reader must not believe.
                .error("100 GB storage in 8 bytes", "holds 8 bytes but data.pkl claims 25000000000 x F32", f ->
                        pth(f, statePickle(p -> p.tensor("FloatStorage", "0", 25_000_000_000L, 0, new long[] {2},
                                new long[] {1})), 2))
                .error("storage numel 2^62 overflows bytes", "= 9223372036854775807 bytes", f ->
                        pth(f, statePickle(p -> p.tensor("FloatStorage", "0", 1L << 62, 0, new long[] {2},
                                new long[] {1})), 2))
                .error("storage numel above 2^63", "storage size is a int", f -> pth(f, statePickle(p -> p
                        .global("torch._utils", "_rebuild_tensor_v2").op(MARK, MARK).str("storage")
                        .global("torch", "FloatStorage").str("0").str("cpu")
                        .op(0x8a, 9, 0, 0, 0, 0, 0, 0, 0, 0x80, 0).op('t', 'Q').integer(0).ints(2).ints(1)
                        .op(0x89).orderedDict().op('t', REDUCE)), 2))
                .error("shape overflows a long", "has more than 2147483631 values", f -> pth(f, statePickle(p ->
                        p.tensor("FloatStorage", "0", 2, 0, new long[] {1L << 31, 1L << 31, 1L << 31},
                                new long[] {0, 0, 0})), 2))
                .error("negative dimension", "tensor size[0] is -1", f -> pth(f, statePickle(p -> p.tensor(
                        "FloatStorage", "0", 2, 0, new long[] {-1}, new long[] {1})), 2))
                .error("negative storage offset", "storage offset is -5", f -> pth(f, statePickle(p -> p.tensor(
                        "FloatStorage", "0", 2, -5, new long[] {2}, new long[] {1})), 2))
                .error("storage offset 2^62", "reaches element", f -> pth(f, statePickle(p -> p.tensor(
                        "FloatStorage", "0", 2, 1L << 62, new long[] {2}, new long[] {1})), 2))
                .error("stride 2^62 overflows the last index", "reaches element 9223372036854775807", f ->
                        pth(f, statePickle(p -> p.tensor("FloatStorage", "0", 2, 0, new long[] {3},
                                new long[] {1L << 62})), 2))
                .error("negative stride", "tensor stride[0] is -1", f -> pth(f, statePickle(p -> p.tensor(
                        "FloatStorage", "0", 2, 1, new long[] {2}, new long[] {-1})), 2))
                .error("zero stride expands 1 value to 10^9", "refusing to allocate", f -> pth(f, statePickle(p ->
                        p.tensor("FloatStorage", "0", 1, 0, new long[] {1_000_000_000L}, new long[] {0})), 1))
                .error("size and stride ranks differ", "size has 2 dimensions but stride has 1", f -> pth(f,
                        statePickle(p -> p.tensor("FloatStorage", "0", 2, 0, new long[] {1, 2}, new long[] {1})), 2))
                .error("storage key escapes the archive", "is not a plain name", f -> pth(f, statePickle(p ->
                        p.tensor("FloatStorage", "../../../etc/passwd", 2, 0, new long[] {2}, new long[] {1})), 2))
                .error("storage key absolute", "is not a plain name", f -> pth(f, statePickle(p ->
                        p.tensor("FloatStorage", "/etc/passwd", 2, 0, new long[] {2}, new long[] {1})), 2))
                .error("storage type outside the allowlist", "refusing to load: the pickle references torch.Tensor",
                        f -> pth(f, statePickle(p -> p.tensor("Tensor", "0", 2, 0, new long[] {2},
                                new long[] {1})), 2))
                .error("one storage as two dtypes", "is referenced both as", f -> pth(f, new Pickle().proto(2)
                        .orderedDict().op(MARK)
                        .str("a").tensor("FloatStorage", "0", 2, 0, new long[] {2}, new long[] {1})
                        .str("b").tensor("LongStorage", "0", 1, 0, new long[] {1}, new long[] {1})
                        .op(SETITEMS, STOP).bytes(), 2))
                .error("storage entry missing", "named by data.pkl is missing", f -> Pickle.writePth(f,
                        Pickle.oneTensor("w"), Map.of()))
                .error("byteorder neither little nor big", "expected 'little' or 'big'", f -> Pickle.writeZip(f,
                        Map.of("archive/data.pkl", Pickle.oneTensor("w"), "archive/data/0", Pickle.floats(2),
                                "archive/byteorder", "middle".getBytes(StandardCharsets.US_ASCII)), ZipEntry.STORED))
                .error("byteorder entry of 1 MB", "is larger than 64 bytes", f -> Pickle.writeZip(f,
                        Map.of("archive/data.pkl", Pickle.oneTensor("w"), "archive/data/0", Pickle.floats(2),
                                "archive/byteorder", new byte[1 << 20]), ZipEntry.DEFLATED))
                // Zip bombs: tiny on disk, huge inflated.
                .error("data.pkl deflate bomb (257 MB of zeros)", "bytes, more than the 268435456", f ->
                        Pickle.writeZip(f, Map.of("archive/data.pkl", new byte[(256 << 20) + 1024]),
                                ZipEntry.DEFLATED))
                .error("storage deflate bomb (64 MB of zeros)", "more than the whole", f -> Pickle.writeZip(f,
                        Map.of("archive/data.pkl", statePickle(p -> p.tensor("FloatStorage", "0", 16 << 20, 0,
                                        new long[] {1}, new long[] {1})),
                                "archive/data/0", new byte[64 << 20]), ZipEntry.DEFLATED))
                // Stack, memo and recursion abuse in the pickle.
                .error("5 million MARKs", "opens more than 4000000 MARKs", f -> pth(f,
                        concat(repeat(MARK, 5_000_000), new byte[] {STOP}), 0))
                .error("a million nested lists", "holds a list, not a dict", f -> pth(f,
                        concat(repeat(EMPTY_LIST, 1_000_000), repeat(APPEND, 999_999), new byte[] {STOP}), 0))
                .error("500,000 nested dicts", "holds no tensors", f -> pth(f, nestedDicts(500_000), 0))
                .error("tuples nested 1000 deep", "tuples nested more than 100 deep", f -> pth(f,
                        concat(new byte[] {EMPTY_TUPLE}, repeat(0x85, 1000), new byte[] {STOP}), 0))
                .error("tuple DAG 90 deep as a dict key (2^90 paths)", "dict key", f -> pth(f, tupleDagKey(90), 0))
                .ok("100,000 tuple keys with one Java hashCode", f -> pth(f, collidingTupleKeys(100_000), 2))
                .error("200 deflated storages, each nearly as large as the file", "storages add up to more than",
                        PthFuzzTest::deflatedStorages)
                .ok("an empty tensor over a missing storage", f -> Pickle.writePth(f, new Pickle().proto(2)
                        .orderedDict().op(MARK).str("w").floatTensor("0", 2).str("e").floatTensor("9", 0)
                        .op(SETITEMS, STOP).bytes(), Map.of("0", Pickle.floats(2))))
                .error("tensors under the int key 1 and the str key '1'", "stored under the key 1, a int",
                        f -> pth(f, new Pickle().proto(2).orderedDict().op(MARK).integer(1).floatTensor("0", 2)
                                .str("1").floatTensor("0", 2).op(SETITEMS, STOP).bytes(), 2))
                .error("100 kB string as a dict key, compared a million times", "dict key", f -> pth(f,
                        longKeyCompares(100_000, 1_000_000), 0))
                .ok("a 1000-element tuple key set 100,000 times stays fast", f -> pth(f,
                        tupleKeyReuse(1000, 100_000), 2))
                .error("BINGET of an index never stored", "memo entry 7, which was never stored", f -> pth(f,
                        new Pickle().proto(2).op(BINGET, 7, STOP).bytes(), 0))
                .error("LONG_BINGET 2^32-1 never stored", "memo entry 4294967295, which was never stored", f ->
                        pth(f, new Pickle().proto(2).op(LONG_BINGET, 0xff, 0xff, 0xff, 0xff, STOP).bytes(), 0))
                .ok("LONG_BINPUT at index 2^32-1 allocates nothing", f -> pth(f, new Pickle().proto(2)
                        .orderedDict().op(LONG_BINPUT, 0xff, 0xff, 0xff, 0xff, MARK).str("w").floatTensor("0", 2)
                        .op(SETITEMS, '0', LONG_BINGET, 0xff, 0xff, 0xff, 0xff, STOP).bytes(), 2))
                .error("PUT at a negative index", "negative memo index", f -> pth(f, new Pickle().proto(2)
                        .op('N').raw("p-1\n".getBytes(StandardCharsets.US_ASCII)).op(STOP).bytes(), 0))
                .error("GET with a 30-digit index", "bad integer", f -> pth(f, new Pickle().proto(2)
                        .raw("g123456789012345678901234567890\n".getBytes(StandardCharsets.US_ASCII)).op(STOP)
                        .bytes(), 0))
                .error("BINUNICODE8 of 2^63 bytes", "a length of 9223372036854775808 bytes runs past the end",
                        f -> pth(f, new Pickle().proto(4).op(0x8d).u64(Long.MIN_VALUE).op(STOP).bytes(), 0))
                .error("BINBYTES of 2^32-1 bytes", "a length of 4294967295 bytes runs past the end", f -> pth(f,
                        new Pickle().proto(3).op('B').u32(0xFFFF_FFFFL).op(STOP).bytes(), 0))
                .error("LONG4 of negative length", "runs past the end of data.pkl", f -> pth(f,
                        new Pickle().proto(2).op(0x8b).u32(-2).op(STOP).bytes(), 0))
                .error("BINSTRING of negative length", "runs past the end", f -> pth(f,
                        new Pickle().proto(2).op('T').u32(-1).op(STOP).bytes(), 0))
                .ok("FRAME claiming 2^63 bytes is only a hint", f -> pth(f, concat(new Pickle().proto(4).op(0x95)
                        .u64(Long.MAX_VALUE).bytes(), Arrays.copyOfRange(Pickle.oneTensor("w"), 2,
                        Pickle.oneTensor("w").length)), 2))
                .error("unknown opcode 0xff", "unknown pickle opcode 0xff", f -> pth(f,
                        new byte[] {(byte) 0x80, 2, (byte) 0xff}, 0))
                .error("pickle protocol 6", "unknown pickle protocol 6", f -> pth(f, new byte[] {(byte) 0x80, 6}, 0))
                .error("pickle without STOP", "ends without a STOP opcode", f -> pth(f,
                        Arrays.copyOf(Pickle.oneTensor("w"), Pickle.oneTensor("w").length - 1), 2))
                .error("STOP on an empty stack", "pops from an empty stack", f -> pth(f, new byte[] {STOP}, 0))
                .error("extension registry (EXT1)", "copyreg extension registry", f -> pth(f,
                        new byte[] {(byte) 0x80, 2, (byte) 0x82, 1, STOP}, 0))
                .error("REDUCE on a string", "REDUCE on str", f -> pth(f,
                        new Pickle().proto(2).str("os.system").op(EMPTY_TUPLE, REDUCE, STOP).bytes(), 0))
                .error("BUILD on a list", "BUILD on list", f -> pth(f,
                        new Pickle().proto(2).op(EMPTY_LIST, EMPTY_DICT, 'b', STOP).bytes(), 0))
                .error("a list as a dict key", "which Python cannot hash", f -> pth(f,
                        new Pickle().proto(2).op(EMPTY_DICT, EMPTY_LIST, 'N', SETITEM, STOP).bytes(), 0))
                .error("odd number of SETITEMS items", "odd number of keys and values", f -> pth(f,
                        new Pickle().proto(2).op(EMPTY_DICT, MARK, 'N', SETITEMS, STOP).bytes(), 0))
                .error("pickle of a bare tensor, not a dict", "holds a tensor, not a dict", f -> pth(f,
                        concat(new Pickle().proto(2).floatTensor("0", 2).bytes(), new byte[] {STOP}), 2));
        corpus.run("pth", dir, ".pth", READERS);
    }

    @Test
    void truncatedAtEveryOffset() throws IOException {
        Path file = dir.resolve("cut.pth");
        try (FuzzRun run = new FuzzRun("pth truncations")) {
            for (String seed : SEEDS) {
                byte[] whole = Corpus.resource(seed);
                for (int n = 0; n < whole.length; n++) {
                    Files.write(file, Arrays.copyOf(whole, n));
                    FuzzRun.Outcome o = run.attempt(seed + " cut to " + n, List.of(file), () -> Checkpoints.read(file));
                    assertTrue(o.kind() != FuzzRun.Kind.OK, seed + " cut to " + n + " bytes must not read");
                }
            }
            run.report();
        }
    }

    @Test
    void mutatedZip() throws IOException {
        Path file = dir.resolve("mutant.pth");
        try (FuzzRun run = new FuzzRun("pth")) {
            for (String seed : SEEDS) {
                Mutator mutator = new Mutator(Corpus.resource(seed), RAW_SEED + seed.hashCode());
                for (int i = 0; i < MUTANTS_PER_SEED; i++) {
                    Mutator.Mutant m = mutator.mutant(i);
                    Files.write(file, m.bytes());
                    run.attempt(seed + " " + m.describe(), List.of(file), () -> Checkpoints.read(file));
                }
            }
            run.report();
            assertTrue(run.ok() > 0 && run.clean() > 0, "the mutations should produce both outcomes");
        }
    }

    @Test
    void mutatedPickleInAWellFormedZip() throws IOException {
        Path file = dir.resolve("mutant-pickle.pth");
        try (FuzzRun run = new FuzzRun("pth data.pkl")) {
            for (String seed : SEEDS) {
                Map<String, byte[]> entries = unzip(Corpus.resource(seed));
                String pickleName = entries.keySet().stream().filter(n -> n.endsWith("/data.pkl")).findFirst()
                        .orElseThrow();
                Mutator mutator = new Mutator(entries.get(pickleName), PICKLE_SEED + seed.hashCode());
                for (int i = 0; i < MUTANTS_PER_SEED; i++) {
                    Mutator.Mutant m = mutator.mutant(i);
                    Map<String, byte[]> mutated = new LinkedHashMap<>(entries);
                    mutated.put(pickleName, m.bytes());
                    Pickle.writeZip(file, mutated, ZipEntry.STORED);
                    run.attempt(seed + " data.pkl " + m.describe(), List.of(file), () -> Checkpoints.read(file));
                }
            }
            run.report();
            assertTrue(run.ok() > 0 && run.clean() > 0, "the mutations should produce both outcomes");
        }
    }

    // ---- building files ----

    /** A pth whose storage "0" holds {@code floats} fp32 values (and "1" a few more, for two-storage pickles). */
    private static void pth(Path file, byte[] pickle, int floats) throws IOException {
        Pickle.writePth(file, pickle, floats == 0 ? Map.of() : Map.of("0", Pickle.floats(floats)));
    }

    /** {@code OrderedDict(w=<what tensor writes>)}. */
    private static byte[] statePickle(java.util.function.Consumer<Pickle> tensor) {
        Pickle p = new Pickle().proto(2).orderedDict().op(MARK).str("w");
        tensor.accept(p);
        return p.op(SETITEMS, STOP).bytes();
    }

    /** {@code {'k': {'k': {... n deep}}}}, built bottom-up so nothing recurses while pickling. */
    private static byte[] nestedDicts(int n) {
        Pickle p = new Pickle().proto(2).op(EMPTY_DICT);
        for (int i = 0; i < n; i++) {
            p.op(0x8c, 1, 'k', EMPTY_DICT);
        }
        for (int i = 0; i < n; i++) {
            p.op(SETITEM);
        }
        return p.op(STOP).bytes();
    }

    /**
     * 200 tensors, each on its own storage of 16,000 fp32 zeros (64 KB, deflated to a few hundred bytes), in a file
     * padded to about 80 KB: each storage fits the file, together they are 160 times its size.
     */
    private static void deflatedStorages(Path f) throws IOException {
        Pickle p = new Pickle().proto(2).orderedDict().op(MARK);
        Map<String, byte[]> entries = new java.util.LinkedHashMap<>();
        for (int i = 0; i < 200; i++) {
            p.str("t" + i).floatTensor(Integer.toString(i), 16_000);
            entries.put("archive/data/" + i, new byte[64_000]);
        }
        entries.put("archive/data.pkl", p.op(SETITEMS, STOP).bytes());
        entries.put("archive/padding", randomBytes(9, 80_000));
        Pickle.writeZip(f, entries, java.util.zip.ZipEntry.DEFLATED);
    }

    /**
     * {@code OrderedDict(w=tensor, (s0,)=0, (s1,)=1, ...)} where every {@code si} is made of the blocks "Aa" and "BB"
     * (equal Java hashCodes), so every tuple key has the same hashCode: quadratic in a plain hash map (142 s for 80,000
     * keys measured), fast in a map that can order the keys.
     */
    private static byte[] collidingTupleKeys(int n) {
        Pickle p = new Pickle().proto(2).orderedDict().op(MARK).str("w").floatTensor("0", 2);
        int bits = 32 - Integer.numberOfLeadingZeros(n - 1);
        for (int i = 0; i < n; i++) {
            StringBuilder key = new StringBuilder();
            for (int b = 0; b < bits; b++) {
                key.append((i >> b & 1) == 0 ? "Aa" : "BB");
            }
            p.str(key.toString()).op(Pickle.TUPLE1).integer(i);
        }
        return p.op(SETITEMS, STOP).bytes();
    }

    /**
     * {@code t0 = (); t(i+1) = (t(i), t(i))}: 3 bytes per level, but hashing or comparing {@code t(depth)}
     * element-wise visits 2^depth tuples. Used as a dict key, twice (the second an equal but distinct object, so the
     * dict has to compare them).
     */
    private static byte[] tupleDagKey(int depth) {
        Pickle p = new Pickle().proto(2).op(EMPTY_DICT);
        for (int copy = 0; copy < 2; copy++) {
            p.op(EMPTY_TUPLE);
            for (int i = 0; i < depth; i++) {
                p.op(DUP, TUPLE2);
            }
            p.op('N', SETITEM);
        }
        return p.op(STOP).bytes();
    }

    /**
     * Two equal but distinct strings of {@code length} characters, then {@code times} SETITEMs of the second as a
     * key: each one compares it with the first, character by character.
     */
    private static byte[] longKeyCompares(int length, int times) {
        byte[] chars = new byte[length];
        Arrays.fill(chars, (byte) 'a');
        Pickle p = new Pickle().proto(2).op(EMPTY_DICT);
        p.op('X').u32(length).raw(chars).op('N', SETITEM);
        p.op('X').u32(length).raw(chars).op(BINPUT, 1, '0');
        for (int i = 0; i < times; i++) {
            p.op(BINGET, 1, 'N', SETITEM);
        }
        return p.op(STOP).bytes();
    }

    /**
     * A state_dict with one tensor, and many SETITEMs of the same {@code size}-element tuple key: the cost of
     * the keys the reader still accepts.
     */
    private static byte[] tupleKeyReuse(int size, int times) {
        Pickle p = new Pickle().proto(2).orderedDict().op(MARK).str("w").floatTensor("0", 2).op(SETITEMS);
        p.op(MARK);
        for (int i = 0; i < size; i++) {
            p.integer(i);
        }
        p.op('t', BINPUT, 1, '0');
        for (int i = 0; i < times; i++) {
            p.op(BINGET, 1, 'N', SETITEM);
        }
        return p.op(STOP).bytes();
    }

    private static byte[] emptyZip() {
        byte[] b = new byte[22];
        b[0] = 'P';
        b[1] = 'K';
        b[2] = 5;
        b[3] = 6;
        return b;
    }

    static byte[] randomBytes(long seed, int n) {
        byte[] b = new byte[n];
        new Random(seed).nextBytes(b);
        return b;
    }

    static byte[] repeat(int opcode, int n) {
        byte[] b = new byte[n];
        Arrays.fill(b, (byte) opcode);
        return b;
    }

    static byte[] concat(byte[]... parts) {
        int n = 0;
        for (byte[] p : parts) {
            n += p.length;
        }
        byte[] out = new byte[n];
        int at = 0;
        for (byte[] p : parts) {
            System.arraycopy(p, 0, out, at, p.length);
            at += p.length;
        }
        return out;
    }

    /** The entries of a zip, in order (ZipFile, because torch writes stored entries with data descriptors). */
    private Map<String, byte[]> unzip(byte[] zip) throws IOException {
        Path file = Files.write(dir.resolve("seed-copy.zip"), zip);
        Map<String, byte[]> out = new LinkedHashMap<>();
        try (ZipFile z = new ZipFile(file.toFile())) {
            for (ZipEntry e : java.util.Collections.list(z.entries())) {
                out.put(e.getName(), z.getInputStream(e).readAllBytes());
            }
        }
        return out;
    }
}
