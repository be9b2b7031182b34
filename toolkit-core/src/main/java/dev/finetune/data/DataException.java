package dev.finetune.data;

import dev.finetune.ErrorKind;
import dev.finetune.FinetuneException;
import java.nio.file.Path;

/**
 * Training or validation data that cannot be used. The message always starts with the file or folder at fault, so
 * the user can go straight to it, and says how to fix it.
 */
public class DataException extends FinetuneException {
    public DataException(Path where, String problem) {
        super(ErrorKind.DATA, where + ": " + problem);
    }

    public DataException(Path where, String problem, Throwable cause) {
        super(ErrorKind.DATA, where + ": " + problem, cause);
    }
}
