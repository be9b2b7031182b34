package dev.finetune.io;

import dev.finetune.ErrorKind;
import dev.finetune.FinetuneException;
import java.io.BufferedOutputStream;
import java.io.FilterOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.file.AccessDeniedException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.SecureRandom;
import java.util.HexFormat;

/**
 * Writes a file so that readers see either the old content or the complete new content.
 *
 * <p>The body writes to a temporary file in the target's directory (same file system, so the final rename cannot turn
 * into a copy); the data is forced to disk before the rename, because a rename that reaches the disk before the data
 * would leave an empty or partial file after a power loss. If the body or any step fails, the temporary file is
 * deleted and the previous file, if any, is untouched.
 */
public final class AtomicFiles {
    private static final SecureRandom RANDOM = new SecureRandom();

    private AtomicFiles() {
    }

    /**
     * Writes {@code target} atomically with what {@code body} writes to the stream it is given.
     *
     * <p>The stream is buffered; the body need not flush or close it (closing it is harmless and does not end the
     * write). An {@link IOException} becomes a {@link FinetuneException} of kind {@link ErrorKind#OUTPUT} naming the
     * file and the cause; a {@link RuntimeException} thrown by the body is rethrown unchanged after the cleanup, so a
     * body can abort a write with its own error (a checksum mismatch, say).
     *
     * @throws FinetuneException {@link ErrorKind#OUTPUT} if the file cannot be written
     */
    public static void write(Path target, IOConsumer<OutputStream> body) {
        Path absolute = target.toAbsolutePath();
        Path dir = absolute.getParent();
        Path temp = dir.resolve("." + absolute.getFileName() + "." + randomSuffix() + ".tmp");
        try {
            // CREATE_NEW rather than createTempFile: the new file gets the usual umask permissions, not 0600.
            try (FileChannel channel = FileChannel.open(temp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
                BufferedOutputStream out = new BufferedOutputStream(Channels.newOutputStream(channel), 1 << 16);
                body.accept(new KeepOpen(out));
                out.flush();
                channel.force(true);
            }
            move(temp, absolute);
        } catch (IOException e) {
            deleteQuietly(temp);
            throw new FinetuneException(ErrorKind.OUTPUT, "cannot write " + target + ": " + describe(e), e);
        } catch (RuntimeException | Error e) {
            deleteQuietly(temp);
            throw e;
        }
        syncDirectory(dir);
    }

    private static void move(Path temp, Path target) throws IOException {
        try {
            Files.move(temp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (AtomicMoveNotSupportedException e) {
            // Some file systems (certain network and FUSE mounts) refuse atomic renames; a plain replace is the best
            // they offer, and the data is already on disk.
            Files.move(temp, target, StandardCopyOption.REPLACE_EXISTING);
        }
    }

    /** Makes the rename itself durable; not every platform lets a directory be opened, so failure is ignored. */
    private static void syncDirectory(Path dir) {
        try (FileChannel channel = FileChannel.open(dir, StandardOpenOption.READ)) {
            channel.force(true);
        } catch (IOException | UnsupportedOperationException e) {
            // The file content is complete and renamed; only durability across a power loss is weaker.
        }
    }

    private static void deleteQuietly(Path temp) {
        try {
            Files.deleteIfExists(temp);
        } catch (IOException e) {
            // Nothing more can be done; the caller's error says what went wrong first.
        }
    }

    private static String randomSuffix() {
        byte[] bytes = new byte[6];
        RANDOM.nextBytes(bytes);
        return HexFormat.of().formatHex(bytes);
    }

    /** NIO exception messages are often just a path; say what happened in words. */
    static String describe(IOException e) {
        if (e instanceof AccessDeniedException a) {
            return "permission denied (" + a.getFile() + ")";
        }
        if (e instanceof NoSuchFileException n) {
            return "no such file or directory (" + n.getFile() + ")";
        }
        if (e instanceof FileSystemException f && f.getReason() != null) {
            return f.getReason() + (f.getFile() != null ? " (" + f.getFile() + ")" : "");
        }
        return e.getMessage() != null ? e.getMessage() : e.getClass().getSimpleName();
    }

    /** Lets a body close its stream (ZipOutputStream always does) without closing the channel before the fsync. */
    private static final class KeepOpen extends FilterOutputStream {
        KeepOpen(OutputStream out) {
            super(out);
        }

        @Override
        public void write(byte[] b, int off, int len) throws IOException {
            out.write(b, off, len);
        }

        @Override
        public void close() throws IOException {
            out.flush();
        }
    }
}
