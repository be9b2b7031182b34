package dev.finetune;

/**
 * The one exception of {@link ErrorKind#CONFIG}: an invalid config or policy value. The message starts with the YAML
 * path when there is one ({@code optimizer.lr: must be > 0, found -1}).
 */
public class ConfigException extends FinetuneException {
    public ConfigException(String path, String problem) {
        super(ErrorKind.CONFIG, (path == null || path.isEmpty() ? "" : path + ": ") + problem);
    }
}
