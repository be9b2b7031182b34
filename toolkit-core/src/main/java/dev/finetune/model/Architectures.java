package dev.finetune.model;

import dev.finetune.ConfigException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/** Every architecture the toolkit builds, by config name: the registry that {@code model.arch} parses against. */
public final class Architectures {
    private static final List<Architecture> ALL;

    static {
        List<Architecture> all = new ArrayList<>(List.of(ResNetArch.values()));
        all.addAll(List.of(MobileNetArch.values()));
        all.addAll(List.of(EfficientNetArch.values()));
        all.addAll(List.of(ConvNeXtArch.values()));
        all.addAll(List.of(RegNetArch.values()));
        all.addAll(List.of(DenseNetArch.values()));
        all.addAll(List.of(VggArch.values()));
        ALL = Collections.unmodifiableList(all);
    }

    private Architectures() {}

    /** All architectures, families in a fixed order. */
    public static List<Architecture> all() {
        return ALL;
    }

    /** The config names ({@code resnet18, resnet34, …}). */
    public static List<String> names() {
        return ALL.stream().map(Architecture::configName).toList();
    }

    /** Parses {@code resnet18} (case-insensitive); an unknown name is a config error at {@code model.arch}. */
    public static Architecture parse(String name) {
        for (Architecture a : ALL) {
            if (a.configName().equalsIgnoreCase(name)) {
                return a;
            }
        }
        throw new ConfigException(ConfigException.Part.ARCHITECTURE, "", "unknown architecture '" + name + "'; known: " + names());
    }
}
