package dev.finetune.fuzz;

import static org.junit.jupiter.api.Assertions.fail;

import dev.finetune.FinetuneException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.regex.Pattern;

/**
 * Runs a reader on one untrusted input after another and sorts each outcome into exactly one of:
 *
 * <ul>
 *   <li><b>read ok</b>: the reader returned;
 *   <li><b>clean error</b>: a {@link FinetuneException} whose message is not blank and names the input file (or, for
 *       configs, at least the YAML key; see {@link #allowYamlPathOnly});
 *   <li><b>other</b>: anything else: another exception type, an {@link Error} such as {@link OutOfMemoryError} or
 *       {@link StackOverflowError}, a FinetuneException that does not say which file, or no answer within the
 *       per-input time limit (a hang).
 * </ul>
 *
 * Each input runs on a worker thread so that a hang is reported with the input that caused it instead of stalling the
 * build; a hung worker is abandoned (it is a daemon) and a fresh one takes over.
 */
final class FuzzRun implements AutoCloseable {
    /** Generous: every input here is a few kB and reads in well under a millisecond. */
    static final Duration PER_INPUT = Duration.ofSeconds(10);

    enum Kind { OK, CLEAN, OTHER }

    /** {@code optimizer.groups[0].lr_mult: ...}, or {@code --set a.b: ...} for an edit given on the command line. */
    private static final Pattern YAML_PATH_FIRST = Pattern.compile("(--set( [^:\\n]+)?|[a-z_]+(\\.[a-z_]+|\\[\\d+\\])*): \\S");

    /** One input's outcome; {@code error} is null when the read succeeded. */
    record Outcome(Kind kind, Object value, Throwable error, String why) {
        String message() {
            return error == null ? null : error.getMessage();
        }
    }

    private final String format;
    private final boolean allowYamlPathOnly;
    private ExecutorService worker = newWorker();
    private int inputs;
    private int ok;
    private int clean;
    private int cleanYamlPathOnly;
    private final List<String> others = new ArrayList<>();
    private long slowestNanos;
    private String slowest;

    /** A run for a binary format, whose errors must name the file. */
    FuzzRun(String format) {
        this(format, false);
    }

    /**
     * @param allowYamlPathOnly also count as clean a {@link dev.finetune.ConfigException} that names the YAML
     *     key at fault but not the file: the config records report value errors (say {@code freeze.default: must be
     *     'train' or 'freeze'}) from their constructors, which do not know the file
     */
    FuzzRun(String format, boolean allowYamlPathOnly) {
        this.format = format;
        this.allowYamlPathOnly = allowYamlPathOnly;
    }

    /**
     * Runs {@code read} on one input.
     *
     * @param label what the input is, for the failure report (a mutation list, a corpus entry name)
     * @param files the files a clean error may name (the input, or either file of an IDX pair)
     */
    Outcome attempt(String label, List<Path> files, Callable<?> read) {
        inputs++;
        long start = System.nanoTime();
        Future<?> future = worker.submit(read);
        Outcome outcome;
        try {
            outcome = new Outcome(Kind.OK, future.get(PER_INPUT.toMillis(), TimeUnit.MILLISECONDS), null, null);
        } catch (TimeoutException e) {
            future.cancel(true);
            worker.shutdownNow();
            worker = newWorker();
            outcome = new Outcome(Kind.OTHER, null, e, "no answer within " + PER_INPUT.toSeconds() + " s (hang)");
        } catch (ExecutionException e) {
            outcome = classify(e.getCause(), files);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted", e);
        }
        long elapsed = System.nanoTime() - start;
        if (elapsed > slowestNanos) {
            slowestNanos = elapsed;
            slowest = label;
        }
        switch (outcome.kind()) {
            case OK -> ok++;
            case CLEAN -> clean++;
            case OTHER -> others.add(label + ": " + outcome.why() + "\n" + stackTrace(outcome.error()));
        }
        return outcome;
    }

    private Outcome classify(Throwable t, List<Path> files) {
        if (!(t instanceof FinetuneException f)) {
            return new Outcome(Kind.OTHER, null, t, t.getClass().getName() + " escaped: " + t.getMessage());
        }
        String message = f.getMessage();
        if (message == null || message.isBlank()) {
            return new Outcome(Kind.OTHER, null, t, "FinetuneException with an empty message");
        }
        for (Path file : files) {
            if (message.contains(file.toString())) {
                return new Outcome(Kind.CLEAN, null, t, null);
            }
        }
        if (allowYamlPathOnly && YAML_PATH_FIRST.matcher(message).lookingAt()) {
            cleanYamlPathOnly++;
            return new Outcome(Kind.CLEAN, null, t, null);
        }
        return new Outcome(Kind.OTHER, null, t, "FinetuneException that does not name " + files + ": " + message);
    }

    /** The one-line summary quoted in SECURITY.md. */
    String summary() {
        String split = allowYamlPathOnly
                ? " (" + (clean - cleanYamlPathOnly) + " name the file, " + cleanYamlPathOnly + " only the YAML key)"
                : "";
        return "fuzz " + format + ": " + inputs + " inputs, " + ok + " read ok, " + clean + " clean errors" + split
                + ", " + others.size() + " other";
    }

    int inputs() {
        return inputs;
    }

    int ok() {
        return ok;
    }

    int clean() {
        return clean;
    }

    /** Prints the summary and fails with the first few offending inputs if any outcome was "other". */
    void report() {
        System.out.println(summary());
        System.out.printf("  (slowest input: %d ms, %s)%n", slowestNanos / 1_000_000, slowest);
        if (!others.isEmpty()) {
            StringBuilder b = new StringBuilder(summary()).append('\n');
            others.stream().limit(5).forEach(o -> b.append("--- ").append(o).append('\n'));
            if (others.size() > 5) {
                b.append("... and ").append(others.size() - 5).append(" more\n");
            }
            fail(b.toString());
        }
    }

    @Override
    public void close() {
        worker.shutdownNow();
    }

    private static ExecutorService newWorker() {
        return Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "fuzz-reader");
            t.setDaemon(true);
            return t;
        });
    }

    private static String stackTrace(Throwable t) {
        if (t == null) {
            return "";
        }
        StringWriter w = new StringWriter();
        t.printStackTrace(new PrintWriter(w));
        String s = w.toString();
        return s.length() > 3000 ? s.substring(0, 3000) + "..." : s;
    }
}
