package dev.finetune;

/**
 * What kind of mistake or fault stopped the toolkit. Each kind has its own process exit code, which is part of the
 * command-line interface: {@code finetune --help} prints the table from this enum, and a test checks the README's
 * table against it.
 */
public enum ErrorKind {
    /** A bug or an engine failure the user could not have caused. */
    INTERNAL(1, "internal error (a bug: please report it)"),
    /** Bad command-line arguments. */
    USAGE(2, "usage: bad command-line arguments"),
    /** An invalid configuration or freeze policy (bad key, bad value, rule matching nothing). */
    CONFIG(3, "config: invalid config or freeze policy (bad key, bad value, rule matching nothing)"),
    /** Training or evaluation data that cannot be used (missing, empty class folder, corrupt image). */
    DATA(4, "data: missing, empty or corrupt data"),
    /** A checkpoint that cannot be read, is unsafe, or does not fit the model. */
    CHECKPOINT(5, "checkpoint: unreadable, unsafe or not fitting the model"),
    /** The loss became NaN or infinite. */
    DIVERGED(6, "diverged: the loss became NaN or infinite"),
    /** A file could not be written (disk full, read-only directory, run directory already exists). */
    OUTPUT(7, "output: a file could not be written, or the run directory holds a run or is in use"),
    /** A download failed or its checksum did not match. */
    DOWNLOAD(8, "download: not allowed, failed, or its checksum did not match"),
    /** Stopped by Ctrl-C (SIGINT); the shell convention 128 + 2. */
    INTERRUPTED(130, "interrupted (Ctrl-C); training writes a resumable checkpoint first"),
    /** Stopped by SIGTERM; the shell convention 128 + 15. */
    TERMINATED(143, "terminated (SIGTERM); training writes a resumable checkpoint first");

    private final int exitCode;
    private final String meaning;

    ErrorKind(int exitCode, String meaning) {
        this.exitCode = exitCode;
        this.meaning = meaning;
    }

    /** One line for the exit-code tables of {@code --help} and the README. */
    public String meaning() {
        return meaning;
    }

    /** The process exit code the CLI returns for this kind. */
    public int exitCode() {
        return exitCode;
    }
}
