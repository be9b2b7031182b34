package dev.finetune;

/**
 * What kind of mistake or fault stopped the toolkit. Each kind has its own process exit code, which is part of the
 * command-line interface (documented in the README's exit-code table and asserted by the CLI tests).
 */
public enum ErrorKind {
    /** A bug or an engine failure the user could not have caused. */
    INTERNAL(1),
    /** Bad command-line arguments. */
    USAGE(2),
    /** An invalid configuration or freeze policy (bad key, bad value, rule matching nothing). */
    CONFIG(3),
    /** Training or evaluation data that cannot be used (missing, empty class folder, corrupt image). */
    DATA(4),
    /** A checkpoint that cannot be read, is unsafe, or does not fit the model. */
    CHECKPOINT(5),
    /** The loss became NaN or infinite. */
    DIVERGED(6),
    /** A file could not be written (disk full, read-only directory, run directory already exists). */
    OUTPUT(7),
    /** A download failed or its checksum did not match. */
    DOWNLOAD(8),
    /** Stopped by Ctrl-C (SIGINT); the shell convention 128 + 2. */
    INTERRUPTED(130),
    /** Stopped by SIGTERM; the shell convention 128 + 15. */
    TERMINATED(143);

    private final int exitCode;

    ErrorKind(int exitCode) {
        this.exitCode = exitCode;
    }

    /** The process exit code the CLI returns for this kind. */
    public int exitCode() {
        return exitCode;
    }
}
