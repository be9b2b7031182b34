package dev.finetune.model;

/** A ResNet unit ({@link BasicBlock} or {@link Bottleneck}); torchvision calls the class attribute {@code expansion}. */
public interface ResidualBlock {
    /** Output channels = planes × expansion. */
    int expansion();
}
