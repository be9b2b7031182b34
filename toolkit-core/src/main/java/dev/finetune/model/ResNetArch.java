package dev.finetune.model;


/**
 * The torchvision ResNet family: units per stage, the unit type, and for ResNeXt / Wide ResNet the groups and width
 * per group of the bottleneck's 3×3 (torchvision's {@code groups}, {@code width_per_group}).
 */
public enum ResNetArch implements Architecture {
    RESNET18(new int[] {2, 2, 2, 2}, false, 1, 64),
    RESNET34(new int[] {3, 4, 6, 3}, false, 1, 64),
    RESNET50(new int[] {3, 4, 6, 3}, true, 1, 64),
    RESNET101(new int[] {3, 4, 23, 3}, true, 1, 64),
    RESNET152(new int[] {3, 8, 36, 3}, true, 1, 64),
    RESNEXT50_32X4D(new int[] {3, 4, 6, 3}, true, 32, 4),
    RESNEXT101_32X8D(new int[] {3, 4, 23, 3}, true, 32, 8),
    WIDE_RESNET50_2(new int[] {3, 4, 6, 3}, true, 1, 128),
    WIDE_RESNET101_2(new int[] {3, 4, 23, 3}, true, 1, 128);

    private final int[] layers;
    private final boolean bottleneck;
    private final int groups;
    private final int widthPerGroup;

    ResNetArch(int[] layers, boolean bottleneck, int groups, int widthPerGroup) {
        this.layers = layers;
        this.bottleneck = bottleneck;
        this.groups = groups;
        this.widthPerGroup = widthPerGroup;
    }

    /** Units in each of the four stages. */
    public int[] layers() {
        return layers.clone();
    }

    public boolean bottleneck() {
        return bottleneck;
    }

    /** Groups of the bottleneck's 3×3 conv (32 for ResNeXt, else 1). */
    public int groups() {
        return groups;
    }

    /** torchvision's {@code width_per_group} (64, or 4/8 for ResNeXt, 128 for Wide ResNet). */
    public int widthPerGroup() {
        return widthPerGroup;
    }

    /** Width of the pooled features that {@code fc} sees: 512 for ResNet-18/34, 2048 for the bottleneck nets. */
    public int featureDim() {
        return 512 * (bottleneck ? Bottleneck.EXPANSION : BasicBlock.EXPANSION);
    }


    @Override
    public String headName() {
        return "fc";
    }

    @Override
    public ResNet create(int classes) {
        return ResNet.create(this, classes);
    }

    /** Parses a ResNet-family name; other names are a config error at {@code model.arch}. */
    public static ResNetArch parse(String name) {
        Architecture a = Architectures.parse(name);
        if (a instanceof ResNetArch r) {
            return r;
        }
        throw new dev.finetune.ConfigException(dev.finetune.ConfigException.Part.ARCHITECTURE, "", "'" + name + "' is not a ResNet");
    }
}
