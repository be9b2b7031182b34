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

    /** True when {@code dir} holds the test split's two IDX files ({@code t10k-*-ubyte}, gzipped or not). */
    public static boolean holdsTestSplit(Path dir) {
        for (String name : List.of("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")) {
            if (!Files.isRegularFile(dir.resolve(name + ".gz")) && !Files.isRegularFile(dir.resolve(name))) {
                return false;
            }
        }
        return true;
    }

    /**
     * The 10,000-image test split restricted to {@code classes} and labelled in their order: what a model trained on
     * some or all Fashion-MNIST classes is evaluated on. A class matches a label by its display name
     * ({@code T-shirt/top}) or, ignoring case and everything but letters and digits, its folder name
     * ({@code tshirt_top}).
     *
     * @throws DataException naming the classes that are not Fashion-MNIST's
     */
    public static IdxImageDataset testSetFor(Path dir, List<String> classes) {
        int[] ids = new int[classes.size()];
        List<String> unknown = new java.util.ArrayList<>();
        for (int c = 0; c < classes.size(); c++) {
            // Display and folder names have the same letters and digits (T-shirt/top, tshirt_top).
            String key = ImageFolderIndex.folderSafe(classes.get(c));
            ids[c] = -1;
            for (int label = 0; label < CLASS_NAMES.size(); label++) {
                if (key.equals(ImageFolderIndex.folderSafe(CLASS_NAMES.get(label)))) {
                    ids[c] = label;
                }
            }
            if (ids[c] < 0 || key.isEmpty()) {
                unknown.add(classes.get(c));
            }
        }
        if (!unknown.isEmpty()) {
            throw new DataException(dir, "holds Fashion-MNIST, whose classes are " + CLASS_NAMES + "; the model's"
                    + " class(es) " + unknown + " are not among them. Evaluate this model on an image folder of its"
                    + " classes (DIR/<class>/*.png)");
        }
        return IdxImageDataset.builder().images(readTest(dir)).classNames(CLASS_NAMES).classes(ids).build();
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
