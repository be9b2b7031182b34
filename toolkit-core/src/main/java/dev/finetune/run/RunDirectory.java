package dev.finetune.run;

import dev.finetune.ErrorKind;
import dev.finetune.FinetuneException;
import dev.finetune.io.AtomicFiles;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.UUID;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * A run's folder: {@code config.yaml} (resolved), {@code run.json} (versions, seed, data fingerprint),
 * {@code metrics.csv} / {@code metrics.jsonl}, {@code checkpoints/last.safetensors} and {@code best.safetensors},
 * {@code plots/*.png}, {@code summary.json}.
 *
 * <p>A folder that holds a checkpoint is never reused except by resume. One that a failed or killed run left before
 * its first checkpoint (only files this toolkit writes, no checkpoint) holds nothing worth keeping: starting a run
 * there reuses it, and resuming it starts from the beginning with the config saved there. While a run is open the
 * folder is locked ({@code .lock}), so two processes never train into one folder; orphan {@code .tmp} files of a
 * killed write are removed when it is opened.
 */
public final class RunDirectory implements AutoCloseable {
    /** What this toolkit writes at the top of a run folder, besides checkpoints/ and plots/. */
    private static final Pattern OWN_FILES = Pattern.compile(
            "config\\.yaml|run\\.json|run-resumed-\\d+\\.json|metrics\\.(csv|jsonl)|summary\\.json|report\\.html|\\.lock|.*\\.tmp");

    private final Path root;
    private final FileChannel lockChannel;
    private final FileLock lock;
    private final boolean started;

    private RunDirectory(Path root, FileChannel lockChannel, FileLock lock, boolean started) {
        this.root = root;
        this.lockChannel = lockChannel;
        this.lock = lock;
        this.started = started;
    }

    /**
     * Creates a new run folder, or reuses one that a run left before its first checkpoint. A folder with a
     * checkpoint, or with files this toolkit did not write, is an error (never overwritten by accident).
     */
    public static RunDirectory create(Path root) {
        try {
            if (Files.exists(root) && !isEmpty(root)) {
                if (Files.exists(root.resolve("checkpoints/last.safetensors"))) {
                    throw new FinetuneException(ErrorKind.OUTPUT, "run directory " + root + " already holds a run"
                            + " (checkpoints/last.safetensors); choose another --run-dir, or continue it with --resume "
                            + root);
                }
                if (!onlyOwnFiles(root)) {
                    throw new FinetuneException(ErrorKind.OUTPUT, "run directory " + root + " already exists and"
                            + " holds files that are not a finetune run's; choose another --run-dir");
                }
            }
            Files.createDirectories(root);
        } catch (IOException e) {
            throw new FinetuneException(ErrorKind.OUTPUT, "cannot create run directory " + root + ": " + e, e);
        }
        RunDirectory r = locked(root, false);
        try {
            r.clearUnstarted();
            Files.createDirectories(root.resolve("checkpoints"));
            Files.createDirectories(root.resolve("plots"));
            r.checkWritable();
            return r;
        } catch (IOException e) {
            r.close();
            throw new FinetuneException(ErrorKind.OUTPUT, "cannot create run directory " + root + ": " + e, e);
        } catch (RuntimeException e) {
            r.close();
            throw e;
        }
    }

    /**
     * Opens an existing run folder to resume it: from its last checkpoint, or from the beginning when the run stopped
     * before writing one ({@link #started()} is then false).
     */
    public static RunDirectory existing(Path root) {
        boolean hasCheckpoint = Files.isRegularFile(root.resolve("checkpoints/last.safetensors"));
        if (!hasCheckpoint && !(Files.isRegularFile(root.resolve("config.yaml")) && onlyOwnFilesQuietly(root))) {
            throw new FinetuneException(ErrorKind.USAGE, "nothing to resume in " + root
                    + ": no checkpoints/last.safetensors and no config.yaml (was the run started with --run-dir "
                    + root + "?)");
        }
        RunDirectory r = locked(root, hasCheckpoint);
        try {
            if (!hasCheckpoint) {
                r.clearUnstarted(root.resolve("config.yaml"));
                Files.createDirectories(root.resolve("checkpoints"));
                Files.createDirectories(root.resolve("plots"));
            }
            r.removeOrphans();
            r.checkWritable();
            return r;
        } catch (IOException e) {
            r.close();
            throw new FinetuneException(ErrorKind.OUTPUT, "cannot prepare run directory " + root + ": " + e, e);
        } catch (RuntimeException e) {
            r.close();
            throw e;
        }
    }

    /** Whether the run wrote a checkpoint before (resume continues from it) or must start from the beginning. */
    public boolean started() {
        return started;
    }

    private static RunDirectory locked(Path root, boolean started) {
        FileChannel ch = null;
        try {
            ch = FileChannel.open(root.resolve(".lock"), StandardOpenOption.CREATE, StandardOpenOption.WRITE);
            FileLock lock;
            try {
                lock = ch.tryLock();
            } catch (OverlappingFileLockException e) {
                lock = null;
            }
            if (lock == null) {
                throw new FinetuneException(ErrorKind.OUTPUT, "run directory " + root + " is in use by another"
                        + " finetune run; wait for it to end, or choose another --run-dir");
            }
            return new RunDirectory(root, ch, lock, started);
        } catch (IOException e) {
            closeQuietly(ch);
            throw new FinetuneException(ErrorKind.OUTPUT, "run directory " + root + " cannot be locked ("
                    + e.getClass().getSimpleName() + ": " + e.getMessage() + "); choose a writable --run-dir", e);
        } catch (RuntimeException e) {
            closeQuietly(ch);
            throw e;
        }
    }

    private static boolean isEmpty(Path dir) throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.findAny().isEmpty();
        }
    }

    /**
     * Only files this toolkit writes, and no checkpoint among them; and the {@code .lock} file a run creates first,
     * so that a user's own folder that happens to hold a {@code config.yaml} is never taken for a run.
     */
    private static boolean onlyOwnFiles(Path root) throws IOException {
        if (!Files.isRegularFile(root.resolve(".lock"))) {
            return false;
        }
        try (Stream<Path> s = Files.list(root)) {
            for (Path p : s.toList()) {
                String name = p.getFileName().toString();
                if (name.equals("checkpoints") || name.equals("plots")) {
                    if (!Files.isDirectory(p) || !onlyMatching(p, name.equals("plots") ? ".*\\.(png|tmp)" : ".*\\.tmp")) {
                        return false;
                    }
                } else if (!OWN_FILES.matcher(name).matches() || !Files.isRegularFile(p)) {
                    return false;
                }
            }
        }
        return true;
    }

    private static boolean onlyOwnFilesQuietly(Path root) {
        try {
            return onlyOwnFiles(root);
        } catch (IOException e) {
            return false;
        }
    }

    private static boolean onlyMatching(Path dir, String regex) throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.allMatch(p -> Files.isRegularFile(p) && p.getFileName().toString().matches(regex));
        }
    }

    /** Deletes what a run that never checkpointed left, but {@code keep} (the lock file stays: it is held). */
    private void clearUnstarted(Path... keep) throws IOException {
        List<Path> kept = new ArrayList<>(List.of(keep));
        kept.add(root);
        kept.add(root.resolve(".lock"));
        List<Path> doomed = new ArrayList<>();
        try (Stream<Path> s = Files.walk(root)) {
            s.filter(p -> !kept.contains(p)).forEach(doomed::add);
        }
        doomed.sort(Comparator.reverseOrder());
        for (Path p : doomed) {
            Files.deleteIfExists(p);
        }
    }

    /** Removes the {@code .tmp} files a killed atomic write left (no other process writes here: it is locked). */
    private void removeOrphans() {
        try (Stream<Path> s = Files.walk(root, 2)) {
            for (Path p : s.filter(f -> f.getFileName().toString().endsWith(".tmp") && Files.isRegularFile(f))
                    .toList()) {
                Files.deleteIfExists(p);
            }
        } catch (IOException e) {
            throw new FinetuneException(ErrorKind.OUTPUT, "cannot clean run directory " + root + ": " + e, e);
        }
    }

    private void checkWritable() {
        Path probe = root.resolve(".write-probe-" + ProcessHandle.current().pid() + "-" + UUID.randomUUID());
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

    /** Releases the folder's lock. */
    @Override
    public void close() {
        try {
            if (lock != null && lock.isValid()) {
                lock.release();
            }
        } catch (IOException e) {
            // The channel's close below releases it too.
        }
        closeQuietly(lockChannel);
    }

    private static void closeQuietly(FileChannel ch) {
        if (ch != null) {
            try {
                ch.close();
            } catch (IOException e) {
                // nothing to do: the process is giving the file up
            }
        }
    }
}
