package dev.finetune.data;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * Where Fashion-MNIST lives and what its labels mean. The Debian package {@code dataset-fashion-mnist} installs the
 * four IDX files into {@link #DEBIAN_DIR}.
 */
public final class FashionMnist {
    /** The folder the Debian package {@code dataset-fashion-mnist} installs into. */
    public static final Path DEBIAN_DIR = Path.of("/usr/share/datasets/fashion-mnist");

    /** Display names of labels 0..9, as in the Fashion-MNIST paper and repository. */
    public static final List<String> CLASS_NAMES =
            List.of("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                    "Ankle boot");

    /** Names usable as folder names for labels 0..9 ({@code T-shirt/top} contains a slash). */
    public static final List<String> FOLDER_NAMES =
            List.of("tshirt_top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
                    "ankle_boot");

    private FashionMnist() {}

    /** Reads the 60000-image training split ({@code train-*-ubyte[.gz]}) from {@code dir}. */
    public static IdxImages readTrain(Path dir) {
        return read(dir, "train");
    }

    /** Reads the 10000-image test split ({@code t10k-*-ubyte[.gz]}) from {@code dir}. */
    public static IdxImages readTest(Path dir) {
        return read(dir, "t10k");
    }

    private static IdxImages read(Path dir, String prefix) {
        return IdxReader.read(
                locate(dir, prefix + "-images-idx3-ubyte"), locate(dir, prefix + "-labels-idx1-ubyte"));
    }

    private static Path locate(Path dir, String name) {
        if (!Files.isDirectory(dir)) {
            throw new DataException(
                    dir,
                    "Fashion-MNIST folder does not exist; install the Debian package dataset-fashion-mnist (files go"
                            + " to " + DEBIAN_DIR + ") or point to a folder holding the four *-ubyte[.gz] files");
        }
        for (String candidate : List.of(name + ".gz", name)) {
            Path file = dir.resolve(candidate);
            if (Files.isRegularFile(file)) {
                return file;
            }
        }
        throw new DataException(
                dir,
                "has no " + name + ".gz or " + name + "; it must hold the four Fashion-MNIST IDX files (install the"
                        + " Debian package dataset-fashion-mnist, or download them from"
                        + " https://github.com/zalandoresearch/fashion-mnist)");
    }
}
