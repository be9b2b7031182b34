package dev.finetune.fuzz;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.finetune.data.IdxImages;
import dev.finetune.data.IdxReader;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.function.Function;
import java.util.zip.GZIPOutputStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link IdxReader#read(Path, Path)} on hostile IDX pairs, plain and gzipped: headers that lie about the number and
 * size of images, wrong magic numbers, damaged gzip streams, every truncation, and seeded random mutations of a
 * valid pair. A clean error may name either file of the pair.
 */
class IdxFuzzTest {
    private static final long IDX_SEED = 0x5EED_0005L;
    private static final int MUTANTS_PER_VARIANT = 200;
    private static final int COUNT = 20;
    private static final int ROWS = 4;
    private static final int COLS = 5;

    @TempDir
    Path dir;

    @Test
    void seedPairIsValid() throws IOException {
        Path images = Files.write(dir.resolve("images"), images(COUNT, ROWS, COLS));
        Path labels = Files.write(dir.resolve("labels"), labels(COUNT));
        IdxImages read = IdxReader.read(images, labels);
        assertEquals(COUNT, read.count());
        assertEquals(9, read.label(19));
        Path gz = Files.write(dir.resolve("images.gz"), gzip(images(COUNT, ROWS, COLS)));
        assertEquals(ROWS, IdxReader.read(gz, labels).rows());
    }

    @Test
    void handMadeCorpus() throws IOException {
        Path labels = Files.write(dir.resolve("good-labels"), labels(COUNT));
        byte[] goodImages = images(COUNT, ROWS, COLS);
        Corpus corpus = new Corpus()
                .error("missing file", "does not exist", f -> { })
                .error("a directory", "is a folder", Files::createDirectory)
                .error("a link to /dev/zero", "stores IDX data type 0x00",
                        f -> Files.createSymbolicLink(f, Path.of("/dev/zero")))
                .error("a link to /dev/urandom", "IDX", f -> Files.createSymbolicLink(f, Path.of("/dev/urandom")))
                .error("zero-length", "is shorter than the 16-byte IDX header", f -> Files.write(f, new byte[0]))
                .error("3 bytes", "is shorter than the 16-byte IDX header", f -> Files.write(f, new byte[] {0, 0, 8}))
                .error("labels magic in an images file", "is an IDX labels file (magic 0x00000801)",
                        f -> Files.write(f, labels(COUNT)))
                .error("float IDX", "stores IDX data type 0x0D", f -> Files.write(f, header(0x00000D03, COUNT, ROWS,
                        COLS)))
                .error("PNG bytes", "does not start with the IDX images magic number", f -> Files.write(f,
                        new byte[] {(byte) 0x89, 'P', 'N', 'G', 13, 10, 26, 10, 0, 0, 0, 13, 'I', 'H', 'D', 'R'}))
                .error("4e9 images claimed, 100 bytes present", "is truncated: expected", f -> Files.write(f,
                        withBody(header(0x803, 4_000_000_000L, 28, 28), 100)))
                .error("4e9 images claimed in a gzip", "is truncated: expected", f -> Files.write(f,
                        gzip(withBody(header(0x803, 4_000_000_000L, 28, 28), 100))))
                .error("2^32-1 of everything (product overflows a long)", "is truncated | is longer", f ->
                        Files.write(f, withBody(header(0x803, 0xFFFF_FFFFL, 0xFFFF_FFFFL, 0xFFFF_FFFFL), 10)))
                .error("2 GB claimed, 64 MB of gzip zeros", "is truncated: expected", f -> Files.write(f,
                        gzip(withBody(header(0x803, 1, 46_000, 46_000), 64 << 20))))
                .error("zero images", "contains no images", f -> Files.write(f, header(0x803, 0, ROWS, COLS)))
                .error("zero rows", "rows and columns must be > 0", f -> Files.write(f, header(0x803, COUNT, 0, COLS)))
                .error("one image too many", "has 20 labels but", f -> Files.write(f, images(COUNT + 1, ROWS, COLS)))
                .error("trailing bytes", "is longer than its header says", f -> Files.write(f,
                        Arrays.copyOf(goodImages, goodImages.length + 3)))
                .error("trailing bytes in a gzip", "is longer than its header says", f -> Files.write(f,
                        gzip(Arrays.copyOf(goodImages, goodImages.length + 3))))
                .error("gzip with a wrong CRC", "is a damaged gzip file", f -> {
                    byte[] gz = gzip(goodImages);
                    gz[gz.length - 6] ^= 1; // CRC32 is the trailer's first 4 bytes
                    Files.write(f, gz);
                })
                .error("gzip magic only", "is a damaged gzip file", f -> Files.write(f, new byte[] {0x1f,
                        (byte) 0x8b}))
                .error("gzip with corrupt deflate data", "is a damaged gzip file | is truncated", f -> {
                    byte[] gz = gzip(goodImages);
                    Arrays.fill(gz, 10, 20, (byte) 0xFF);
                    Files.write(f, gz);
                })
                .ok("two concatenated gzip members", f -> Files.write(f, PthFuzzTest.concat(
                        gzip(Arrays.copyOf(goodImages, 50)), gzip(Arrays.copyOfRange(goodImages, 50,
                                goodImages.length)))));
        corpus.run("idx images", dir, "", Corpus.readers("IdxReader.read",
                (Function<Path, ?>) f -> IdxReader.read(f, labels)));

        Path images = Files.write(dir.resolve("good-images"), goodImages);
        Corpus labelCorpus = new Corpus()
                .error("images magic in a labels file", "is an IDX images file", f -> Files.write(f, goodImages))
                .error("4e9 labels claimed", "is truncated", f -> Files.write(f, withBody(header(0x801,
                        4_000_000_000L), 10)))
                .error("4e9 labels claimed in a gzip", "is truncated", f -> Files.write(f, gzip(withBody(
                        header(0x801, 4_000_000_000L), 10))))
                .error("fewer labels than images", "has 19 labels but", f -> Files.write(f, labels(COUNT - 1)));
        labelCorpus.run("idx labels", dir, "", Corpus.readers("IdxReader.read",
                (Function<Path, ?>) f -> IdxReader.read(images, f)));
    }

    @Test
    void truncatedAtEveryOffset() throws IOException {
        Path labelsOk = Files.write(dir.resolve("labels-ok"), labels(COUNT));
        Path imagesOk = Files.write(dir.resolve("images-ok"), images(COUNT, ROWS, COLS));
        Path cut = dir.resolve("cut");
        try (FuzzRun run = new FuzzRun("idx truncations")) {
            for (Variant v : variants()) {
                byte[] whole = v.bytes();
                for (int n = 0; n < whole.length; n++) {
                    Files.write(cut, Arrays.copyOf(whole, n));
                    Path images = v.images() ? cut : imagesOk;
                    Path labels = v.images() ? labelsOk : cut;
                    FuzzRun.Outcome o = run.attempt(v.name() + " cut to " + n, List.of(images, labels),
                            () -> IdxReader.read(images, labels));
                    assertTrue(o.kind() != FuzzRun.Kind.OK, v.name() + " cut to " + n + " must not read");
                }
            }
            run.report();
        }
    }

    @Test
    void mutatedPairs() throws IOException {
        Path labelsOk = Files.write(dir.resolve("labels-ok"), labels(COUNT));
        Path imagesOk = Files.write(dir.resolve("images-ok"), images(COUNT, ROWS, COLS));
        Path mutant = dir.resolve("mutant");
        try (FuzzRun run = new FuzzRun("idx")) {
            for (Variant v : variants()) {
                Mutator mutator = new Mutator(v.bytes(), IDX_SEED + v.name().hashCode());
                for (int i = 0; i < MUTANTS_PER_VARIANT; i++) {
                    Mutator.Mutant m = mutator.mutant(i);
                    Files.write(mutant, m.bytes());
                    Path images = v.images() ? mutant : imagesOk;
                    Path labels = v.images() ? labelsOk : mutant;
                    run.attempt(v.name() + " " + m.describe(), List.of(images, labels),
                            () -> IdxReader.read(images, labels));
                }
            }
            run.report();
            assertTrue(run.ok() > 0 && run.clean() > 0, "the mutations should produce both outcomes");
        }
    }

    /** The file of a pair that is damaged: images or labels, plain or gzipped. */
    private record Variant(String name, boolean images, byte[] bytes) {
    }

    private static List<Variant> variants() {
        return List.of(
                new Variant("images", true, images(COUNT, ROWS, COLS)),
                new Variant("images.gz", true, gzip(images(COUNT, ROWS, COLS))),
                new Variant("labels", false, labels(COUNT)),
                new Variant("labels.gz", false, gzip(labels(COUNT))));
    }

    // ---- building files ----

    private static byte[] images(int count, int rows, int cols) {
        byte[] pixels = new byte[count * rows * cols];
        for (int i = 0; i < pixels.length; i++) {
            pixels[i] = (byte) (i * 37);
        }
        return PthFuzzTest.concat(header(0x803, count, rows, cols), pixels);
    }

    private static byte[] labels(int count) {
        byte[] values = new byte[count];
        for (int i = 0; i < count; i++) {
            values[i] = (byte) (i % 10);
        }
        return PthFuzzTest.concat(header(0x801, count), values);
    }

    /** Big-endian magic and dimensions; dimensions are unsigned 32-bit, so up to 2^32-1. */
    private static byte[] header(int magic, long... dims) {
        ByteBuffer b = ByteBuffer.allocate(4 + 4 * dims.length).putInt(magic);
        for (long d : dims) {
            b.putInt((int) d);
        }
        return b.array();
    }

    private static byte[] withBody(byte[] header, int bodyBytes) {
        return Arrays.copyOf(header, header.length + bodyBytes);
    }

    static byte[] gzip(byte[] data) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (GZIPOutputStream gz = new GZIPOutputStream(out)) {
            gz.write(data);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return out.toByteArray();
    }
}
