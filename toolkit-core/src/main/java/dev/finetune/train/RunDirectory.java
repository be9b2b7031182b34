package dev.finetune.train;

import dev.finetune.ErrorKind;
import dev.finetune.FinetuneException;
import dev.finetune.io.AtomicFiles;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

/**
 * A run's folder: {@code config.yaml} (resolved), {@code run.json} (versions, seed, data fingerprint),
 * {@code metrics.csv} / {@code metrics.jsonl}, {@code checkpoints/last.safetensors} and {@code best.safetensors},
 * {@code plots/*.png}, {@code summary.json}. An existing non-empty folder is never reused except by resume.
 */
public final class RunDirectory {
    private final Path root;

    private RunDirectory(Path root) {
        this.root = root;
    }

    /** Creates a new run folder; an existing non-empty one is an error (never overwritten by accident). */
    public static RunDirectory create(Path root) {
        try {
            if (Files.exists(root)) {
                boolean empty;
                try (Stream<Path> s = Files.list(root)) {
                    empty = s.findAny().isEmpty();
                }
                if (!empty) {
                    throw new FinetuneException(ErrorKind.OUTPUT, "run directory " + root + " already exists and is"
                            + " not empty; choose another --run-dir, or continue it with --resume " + root);
                }
            }
            Files.createDirectories(root.resolve("checkpoints"));
            Files.createDirectories(root.resolve("plots"));
        } catch (IOException e) {
            throw new FinetuneException(ErrorKind.OUTPUT, "cannot create run directory " + root + ": " + e, e);
        }
        RunDirectory r = new RunDirectory(root);
        r.checkWritable();
        return r;
    }

    /** Opens an existing run folder to resume it. */
    public static RunDirectory existing(Path root) {
        if (!Files.isRegularFile(root.resolve("checkpoints/last.safetensors"))) {
            throw new FinetuneException(ErrorKind.USAGE, "nothing to resume in " + root
                    + ": no checkpoints/last.safetensors (was the run started with --run-dir " + root + "?)");
        }
        RunDirectory r = new RunDirectory(root);
        r.checkWritable();
        return r;
    }

    private void checkWritable() {
        Path probe = root.resolve(".write-probe");
        try {
            Files.writeString(probe, "ok");
            Files.delete(probe);
        } catch (IOException e) {
            throw new FinetuneException(ErrorKind.OUTPUT, "run directory " + root + " is not writable (" + e
                    .getClass().getSimpleName() + "); choose a writable --run-dir");
        }
    }

    public Path root() {
        return root;
    }

    public Path lastCheckpoint() {
        return root.resolve("checkpoints/last.safetensors");
    }

    public Path bestCheckpoint() {
        return root.resolve("checkpoints/best.safetensors");
    }

    public Path plots() {
        return root.resolve("plots");
    }

    public Path config() {
        return root.resolve("config.yaml");
    }

    /** Writes a text file in the run folder atomically. */
    public void writeText(String name, String text) {
        AtomicFiles.write(root.resolve(name), out -> out.write(text.getBytes(StandardCharsets.UTF_8)));
    }
}
