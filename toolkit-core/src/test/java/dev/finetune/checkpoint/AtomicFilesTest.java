package dev.finetune.checkpoint;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import dev.finetune.ErrorKind;
import dev.finetune.FinetuneException;
import dev.finetune.io.AtomicFiles;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link AtomicFiles}: a failed write leaves the previous file byte-identical and no temporary file. (It lives in the
 * checkpoint test package because the checkpoint writers are its first users.)
 */
class AtomicFilesTest {
    @TempDir
    Path dir;

    @Test
    void writesNewFileAndLeavesNothingElse() throws IOException {
        Path target = dir.resolve("out.bin");
        AtomicFiles.write(target, out -> out.write("hello".getBytes(StandardCharsets.US_ASCII)));

        assertEquals("hello", Files.readString(target));
        assertEquals(0, TestFiles.strayFiles(dir, "out.bin"));
    }

    @Test
    void ioFailureMidwayKeepsThePreviousFile() throws IOException {
        Path target = dir.resolve("model.pth");
        byte[] previous = "previous content".getBytes(StandardCharsets.US_ASCII);
        Files.write(target, previous);

        FinetuneException e = assertThrows(FinetuneException.class, () -> AtomicFiles.write(target, out -> {
            out.write(new byte[100_000]); // more than the buffer, so part of it reached the temporary file
            throw new IOException("No space left on device");
        }));

        assertEquals(ErrorKind.OUTPUT, e.kind());
        assertEquals("cannot write " + target + ": No space left on device", e.getMessage());
        assertArrayEquals(previous, Files.readAllBytes(target));
        assertEquals(0, TestFiles.strayFiles(dir, "model.pth"));
    }

    @Test
    void bodyExceptionPassesThroughUnchangedAndKeepsThePreviousFile() throws IOException {
        Path target = dir.resolve("weights.safetensors");
        Files.writeString(target, "old");
        IllegalStateException thrown = new IllegalStateException("checksum mismatch");

        IllegalStateException e = assertThrows(IllegalStateException.class, () -> AtomicFiles.write(target, out -> {
            out.write(1);
            throw thrown;
        }));

        assertSame(thrown, e);
        assertEquals("old", Files.readString(target));
        assertEquals(0, TestFiles.strayFiles(dir, "weights.safetensors"));
    }

    @Test
    void bodyMayCloseTheStream() throws IOException {
        Path target = dir.resolve("closed.bin");
        AtomicFiles.write(target, out -> {
            out.write(new byte[] {1, 2, 3});
            out.close();
        });
        assertArrayEquals(new byte[] {1, 2, 3}, Files.readAllBytes(target));
    }

    @Test
    void missingDirectoryIsAnOutputError() {
        Path target = dir.resolve("no-such-dir").resolve("x.pth");
        FinetuneException e = assertThrows(FinetuneException.class, () -> AtomicFiles.write(target, out -> { }));
        assertEquals(ErrorKind.OUTPUT, e.kind());
        assertTrue(e.getMessage().startsWith("cannot write " + target + ": no such file or directory"),
                e.getMessage());
    }

    @Test
    void readOnlyDirectoryIsAnOutputError() throws IOException {
        Path readOnly = Files.createDirectory(dir.resolve("ro"));
        Files.setPosixFilePermissions(readOnly, PosixFilePermissions.fromString("r-xr-xr-x"));
        try {
            assumeFalse(Files.isWritable(readOnly), "running as root: permissions are not enforced");
            Path target = readOnly.resolve("x.pth");
            FinetuneException e = assertThrows(FinetuneException.class, () -> AtomicFiles.write(target, out -> { }));
            assertEquals(ErrorKind.OUTPUT, e.kind());
            assertTrue(e.getMessage().startsWith("cannot write " + target + ": permission denied"), e.getMessage());
        } finally {
            Files.setPosixFilePermissions(readOnly, PosixFilePermissions.fromString("rwxr-xr-x"));
        }
    }
}
