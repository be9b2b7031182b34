package dev.finetune.model;

import dev.finetune.ConfigException;
import java.util.Arrays;
import java.util.Locale;

/** The torchvision ResNet variants: units per stage and the unit type. */
public enum ResNetArch {
    RESNET18(new int[] {2, 2, 2, 2}, false),
    RESNET34(new int[] {3, 4, 6, 3}, false),
    RESNET50(new int[] {3, 4, 6, 3}, true);

    private final int[] layers;
    private final boolean bottleneck;

    ResNetArch(int[] layers, boolean bottleneck) {
        this.layers = layers;
        this.bottleneck = bottleneck;
    }

    /** Units in each of the four stages. */
    public int[] layers() {
        return layers.clone();
    }

    public boolean bottleneck() {
        return bottleneck;
    }

    /** Width of the pooled features that {@code fc} sees: 512 for ResNet-18/34, 2048 for ResNet-50. */
    public int featureDim() {
        return 512 * (bottleneck ? Bottleneck.EXPANSION : BasicBlock.EXPANSION);
    }

    /** The name used in configs ({@code resnet18}). */
    public String configName() {
        return name().toLowerCase(Locale.ROOT);
    }

    /** Parses {@code resnet18}; an unknown name is a config error listing the known ones. */
    public static ResNetArch parse(String name) {
        for (ResNetArch a : values()) {
            if (a.configName().equalsIgnoreCase(name)) {
                return a;
            }
        }
        throw new ConfigException("", "model.arch: unknown architecture '" + name + "'; known: "
                        + Arrays.stream(values()).map(ResNetArch::configName).toList());
    }
}
