package dev.finetune.config;

import dev.finetune.ConfigException;
/**
 * One experiment, as a YAML file: {@code model}, {@code freeze}, {@code optimizer}, {@code data}, {@code train}. Read
 * by {@link ConfigLoader}; the CLI and the library build the same record.
 *
 * @param model network, checkpoint, head
 * @param freeze freeze policy (inline, or a path to a policy file)
 * @param optimizer optimizer
 * @param data data set and preprocessing (needed by train/evaluate, not by inspect)
 * @param train the training loop
 * @param name a name for reports (default: the file name)
 */
public record ExperimentConfig(
        ModelConfig model,
        FreezeConfig freeze,
        OptimizerConfig optimizer,
        DataConfig data,
        TrainConfig train,
        String name) {

    public ExperimentConfig {
        if (model == null) {
            throw new ConfigException("model", "required: at least {arch: resnet18}");
        }
        freeze = freeze == null ? FreezeConfig.trainAll() : freeze;
        if (optimizer == null) {
            throw new ConfigException("optimizer", "required: e.g. {name: sgd, lr: 0.01, momentum: 0.9}");
        }
        train = train == null ? TrainConfig.defaults() : train;
    }
}
