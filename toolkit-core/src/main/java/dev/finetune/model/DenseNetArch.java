package dev.finetune.model;

import java.util.regex.Pattern;

/** torchvision's DenseNet-121/161/169/201 (growth rate, block sizes, initial features as {@code models/densenet.py}). */
public enum DenseNetArch implements Architecture {
    DENSENET121(32, new int[] {6, 12, 24, 16}, 64),
    DENSENET161(48, new int[] {6, 12, 36, 24}, 96),
    DENSENET169(32, new int[] {6, 12, 32, 32}, 64),
    DENSENET201(32, new int[] {6, 12, 48, 32}, 64);

    /**
     * The key spelling of torchvision's published DenseNet files ({@code denselayer1.norm.1.weight}), which
     * torchvision's own {@code _load_state_dict} rewrites to the module names ({@code denselayer1.norm1.weight}).
     */
    private static final Pattern LEGACY = Pattern.compile(
            "^(.*denselayer\\d+\\.(?:norm|relu|conv))\\.((?:[12])\\.(?:weight|bias|running_mean|running_var))$");

    private final int growth;
    private final int[] blocks;
    private final int initFeatures;

    DenseNetArch(int growth, int[] blocks, int initFeatures) {
        this.growth = growth;
        this.blocks = blocks;
        this.initFeatures = initFeatures;
    }


    @Override
    public String headName() {
        return "classifier";
    }

    @Override
    public DenseNet create(int classes) {
        return new DenseNet(this, classes, growth, blocks, initFeatures, 4);
    }

    @Override
    public String normalizeKey(String key) {
        var m = LEGACY.matcher(key);
        return m.matches() ? m.group(1) + m.group(2) : key;
    }
}
