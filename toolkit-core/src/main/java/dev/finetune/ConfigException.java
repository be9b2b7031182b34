package dev.finetune;

/**
 * The one exception of {@link ErrorKind#CONFIG}: an invalid config or policy value. The message starts with the path
 * of the value when there is one ({@code optimizer.lr: must be > 0, found -1}).
 *
 * <p>Domain types (the optimizer settings, the freeze policy, early stopping …) validate their own invariants and name
 * their own fields ({@code lr}, {@code frozen_stages}) with the {@link Part} they belong to; they know nothing of YAML.
 * The assembler, the one place a config becomes objects, turns such an error into its YAML path once
 * ({@link #under}); errors raised by the config records themselves carry their YAML path already (part {@code null}).
 */
public class ConfigException extends FinetuneException {
    /** The domain object a setting belongs to, for the assembler to map to its config section. */
    public enum Part {
        OPTIMIZER, FREEZE_POLICY, EARLY_STOPPING, KEY_MAPPING, ARCHITECTURE, LOSS
    }

    private final Part part;
    private final String path;
    private final String problem;

    /** An error at a config path ({@code optimizer.lr}), or with no path when {@code path} is empty. */
    public ConfigException(String path, String problem) {
        this(null, path, problem);
    }

    /** An error of a domain object's own field ({@code lr} of the optimizer settings). */
    public ConfigException(Part part, String field, String problem) {
        super(ErrorKind.CONFIG, (field == null || field.isEmpty() ? "" : field + ": ") + problem);
        this.part = part;
        this.path = field == null ? "" : field;
        this.problem = problem;
    }

    /** The domain part, or null for an error already at its config path. */
    public Part part() {
        return part;
    }

    /** The path or field the message starts with ({@code ""} for none). */
    public String path() {
        return path;
    }

    /** The message without the path. */
    public String problem() {
        return problem;
    }

    /**
     * The same error at its place in a config: {@code under("optimizer")} of {@code lr: must be > 0} is
     * {@code optimizer.lr: must be > 0}; of a path-less problem, {@code optimizer: …}.
     */
    public ConfigException under(String section) {
        String full = path.isEmpty() ? section : path.startsWith("[") ? section + path : section + "." + path;
        ConfigException e = new ConfigException(full, problem);
        e.setStackTrace(getStackTrace());
        return e;
    }
}
