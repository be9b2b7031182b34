package dev.finetune.checkpoint;

import dev.finetune.ErrorKind;
import dev.finetune.FinetuneException;
import java.nio.file.Path;

/** A checkpoint that cannot be read or is unsafe to read. The message always names the file. */
public class CheckpointException extends FinetuneException {
    public CheckpointException(Path file, String problem) {
        super(ErrorKind.CHECKPOINT, file + ": " + problem);
    }

    public CheckpointException(Path file, String problem, Throwable cause) {
        super(ErrorKind.CHECKPOINT, file + ": " + problem, cause);
    }
}
