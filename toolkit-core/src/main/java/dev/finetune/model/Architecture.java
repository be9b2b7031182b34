package dev.finetune.model;

/**
 * One torchvision architecture ({@code resnet18}, {@code resnext50_32x4d} …): its config name, the module name of the
 * classifier that {@code model.head} replaces, and a factory for the network. Families implement it (ResNet's is
 * {@link ResNetArch}); {@link Architectures} is the registry configs parse against.
 */
public interface Architecture {
    /** The name used in configs and in torchvision ({@code resnet18}): an enum constant's name in lower case. */
    default String configName() {
        if (this instanceof Enum<?> e) {
            return e.name().toLowerCase(java.util.Locale.ROOT);
        }
        throw new UnsupportedOperationException(getClass() + " must name itself");
    }

    /** The module name of the last Linear, the one a new head replaces ({@code fc}, {@code classifier.1}). */
    String headName();

    /**
     * A checkpoint key as this architecture's modules name it: the identity, except where torchvision's published
     * files use an older spelling that torchvision itself rewrites when loading (DenseNet's {@code norm.1}).
     */
    default String normalizeKey(String key) {
        return key;
    }

    /** A new, uninitialized network with a {@code classes}-way head; call {@link Network#initialize} before use. */
    Network create(int classes);
}
