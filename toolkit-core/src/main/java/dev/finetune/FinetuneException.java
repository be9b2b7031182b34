package dev.finetune;

/**
 * An error the user can act on. The message names the thing that is wrong and how to fix it; the CLI prints it
 * without a stack trace and exits with {@link ErrorKind#exitCode()}.
 */
public class FinetuneException extends RuntimeException {
    private final ErrorKind kind;

    public FinetuneException(ErrorKind kind, String message) {
        super(message);
        this.kind = kind;
    }

    public FinetuneException(ErrorKind kind, String message, Throwable cause) {
        super(message, cause);
        this.kind = kind;
    }

    /** The kind of error, which decides the exit code. */
    public ErrorKind kind() {
        return kind;
    }
}
