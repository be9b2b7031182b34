package dev.finetune.config;

import dev.finetune.ErrorKind;
import dev.finetune.FinetuneException;

/** An invalid config: the message starts with the YAML path ({@code optimizer.lr: must be > 0, found -1}). */
public class ConfigException extends FinetuneException {
    public ConfigException(String path, String problem) {
        super(ErrorKind.CONFIG, (path == null || path.isEmpty() ? "" : path + ": ") + problem);
    }
}
