package dev.finetune.cli;

import dev.finetune.ErrorKind;
import dev.finetune.FinetuneException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** The folder of a command that writes its own files ({@code lr-find}, {@code advise}): {@code --out}, or a new one. */
final class OutputDirs {
    private OutputDirs() {}

    /** {@code out} (created if missing), or a new temporary folder named after {@code prefix} when it is null. */
    static Path outOrTemp(Path out, String prefix) {
        try {
            return out != null ? Files.createDirectories(out) : Files.createTempDirectory(prefix);
        } catch (IOException e) {
            throw new FinetuneException(ErrorKind.OUTPUT, "cannot create " + (out != null ? out : "a temporary folder")
                    + ": " + e.getMessage(), e);
        }
    }
}
