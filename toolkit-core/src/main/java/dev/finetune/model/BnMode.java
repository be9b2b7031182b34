package dev.finetune.model;

/** How a BatchNorm layer behaves in a training-mode forward. */
public enum BnMode {
    /** Batch statistics, running statistics updated (PyTorch's {@code module.train()}). */
    TRAIN,
    /** Running statistics used and never changed, whatever the training flag (PyTorch's {@code module.eval()}). */
    FROZEN_STATS
}
