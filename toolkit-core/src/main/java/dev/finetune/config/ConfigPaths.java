package dev.finetune.config;

import dev.finetune.ConfigException;
import java.util.function.Supplier;

/**
 * The one place a domain object's error becomes an error at a YAML path: {@code lr: must be > 0} from the optimizer
 * settings is {@code optimizer.lr: must be > 0} in a config. Used by the config loader's early checks and by the
 * assembler.
 */
public final class ConfigPaths {
    private ConfigPaths() {}

    /** The YAML section of each domain part. */
    static String section(ConfigException.Part part) {
        return switch (part) {
            case OPTIMIZER -> "optimizer";
            case FREEZE_POLICY -> "freeze";
            case EARLY_STOPPING -> "train.early_stopping";
            case KEY_MAPPING -> "model";
            case ARCHITECTURE -> "model.arch";
            case LOSS -> "train";
        };
    }

    /** {@code e} at its YAML path; an error that has one already is returned as it is. */
    public static ConfigException atYamlPath(ConfigException e) {
        return e.part() == null ? e : e.under(section(e.part()));
    }

    /** Runs {@code build}, turning a domain error into one at its YAML path. */
    public static <T> T build(Supplier<T> build) {
        try {
            return build.get();
        } catch (ConfigException e) {
            throw atYamlPath(e);
        }
    }
}
