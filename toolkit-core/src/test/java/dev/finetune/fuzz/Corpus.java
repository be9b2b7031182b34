package dev.finetune.fuzz;

import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Function;

/**
 * A hand-made corpus of hostile files: each case writes one file and says what a reader must make of it. Every case
 * goes through {@link FuzzRun}, so besides its own expectation it must also end cleanly (no other exception, no hang).
 */
final class Corpus {
    /** Writes a case's file. */
    interface Writer {
        void write(Path file) throws IOException;
    }

    /**
     * One file.
     *
     * @param expect null: read ok or a clean error are both fine; "" the read must succeed; otherwise the read must
     *     fail cleanly with a message containing this text (or one of its alternatives separated by " | ", where the
     *     readers word the same problem differently)
     */
    record Case(String name, Writer writer, String expect) {
    }

    private final List<Case> cases = new ArrayList<>();
    private final boolean allowYamlPathOnly;

    /** A corpus for a binary format: clean errors must name the file. */
    Corpus() {
        this(false);
    }

    /** @param allowYamlPathOnly see {@link FuzzRun#FuzzRun(String, boolean)} */
    Corpus(boolean allowYamlPathOnly) {
        this.allowYamlPathOnly = allowYamlPathOnly;
    }

    /** The read must fail cleanly, saying {@code problem}. */
    Corpus error(String name, String problem, Writer writer) {
        cases.add(new Case(name, writer, problem));
        return this;
    }

    /** The read must succeed: an unusual but valid file. */
    Corpus ok(String name, Writer writer) {
        cases.add(new Case(name, writer, ""));
        return this;
    }

    /** Either outcome is fine as long as it is clean. */
    Corpus any(String name, Writer writer) {
        cases.add(new Case(name, writer, null));
        return this;
    }

    int size() {
        return cases.size();
    }

    /**
     * Writes every case into {@code dir} (as {@code <index>-<name><extension>}) and reads it with each reader;
     * prints the summary and fails listing every case that ended otherwise than expected.
     */
    void run(String format, Path dir, String extension, Map<String, Function<Path, ?>> readers) throws IOException {
        List<String> wrong = new ArrayList<>();
        try (FuzzRun run = new FuzzRun(format + " corpus", allowYamlPathOnly)) {
            int index = 0;
            for (Case c : cases) {
                Path file = dir.resolve(String.format("%02d-%s%s", index++, c.name().replaceAll("[^A-Za-z0-9]+", "-"),
                        extension));
                c.writer().write(file);
                for (Map.Entry<String, Function<Path, ?>> reader : readers.entrySet()) {
                    String label = "'" + c.name() + "' via " + reader.getKey();
                    // A config's error may name a file it refers to (its freeze policy) rather than itself.
                    List<Path> names = allowYamlPathOnly ? List.of(file, dir) : List.of(file);
                    long start = System.nanoTime();
                    FuzzRun.Outcome o = run.attempt(label, names, () -> reader.getValue().apply(file));
                    long millis = (System.nanoTime() - start) / 1_000_000;
                    check(c, o, label).ifPresent(wrong::add);
                    if (Boolean.getBoolean("fuzz.verbose")) {
                        System.out.println("  " + label + " (" + millis + " ms) -> " + o.kind() + (o.error() == null ? ""
                                : ": " + String.valueOf(o.message()).replace(dir + "/", "")));
                    }
                }
            }
            run.report();
        }
        if (!wrong.isEmpty()) {
            fail(wrong.size() + " corpus case(s) ended unexpectedly:\n" + String.join("\n", wrong));
        }
    }

    private static Optional<String> check(Case c, FuzzRun.Outcome o, String label) {
        if (o.kind() == FuzzRun.Kind.OTHER || c.expect() == null) {
            return Optional.empty(); // "other" outcomes are reported by FuzzRun.report()
        }
        if (c.expect().isEmpty()) {
            return o.kind() == FuzzRun.Kind.OK ? Optional.empty()
                    : Optional.of(label + ": expected a successful read, got: " + o.message());
        }
        if (o.kind() == FuzzRun.Kind.OK) {
            return Optional.of(label + ": expected an error containing '" + c.expect() + "', but it read");
        }
        for (String alternative : c.expect().split(" \\| ")) {
            if (o.message().contains(alternative)) {
                return Optional.empty();
            }
        }
        return Optional.of(label + ": expected '" + c.expect() + "' in: " + o.message());
    }

    /** Readers by name, in order. */
    static Map<String, Function<Path, ?>> readers(Object... nameThenReader) {
        Map<String, Function<Path, ?>> out = new LinkedHashMap<>();
        for (int i = 0; i < nameThenReader.length; i += 2) {
            @SuppressWarnings("unchecked")
            Function<Path, ?> f = (Function<Path, ?>) nameThenReader[i + 1];
            out.put((String) nameThenReader[i], f);
        }
        return out;
    }

    /** A test resource under {@code /fuzz/}. */
    static byte[] resource(String name) {
        try (InputStream in = Corpus.class.getResourceAsStream("/fuzz/" + name)) {
            if (in == null) {
                throw new IllegalStateException("test resource /fuzz/" + name + " is missing");
            }
            return in.readAllBytes();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
