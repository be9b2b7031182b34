package dev.finetune.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Reads the real Fashion-MNIST files installed by the Debian package {@code dataset-fashion-mnist}. CI installs the
 * package; without it this test fails (it does not skip) so a missing package cannot go unnoticed.
 */
class FashionMnistRealDataTest {
    private static IdxImages train;
    private static IdxImages test;

    @BeforeAll
    static void read() {
        assertTrue(
                Files.isRegularFile(FashionMnist.DEBIAN_DIR.resolve("train-images-idx3-ubyte.gz")),
                FashionMnist.DEBIAN_DIR + " is missing: install the Debian package dataset-fashion-mnist"
                        + " (apt-get install dataset-fashion-mnist) to run this test");
        train = FashionMnist.readTrain(FashionMnist.DEBIAN_DIR);
        test = FashionMnist.readTest(FashionMnist.DEBIAN_DIR);
    }

    @Test
    void countsAndLabelHistogramsAreTheOfficialOnes() {
        assertEquals(60000, train.count());
        assertEquals(10000, test.count());
        assertEquals(28, train.rows());
        assertEquals(28, train.cols());
        int[] tenTimes6000 = new int[10];
        Arrays.fill(tenTimes6000, 6000);
        assertArrayEquals(tenTimes6000, train.labelCounts());
        int[] tenTimes1000 = new int[10];
        Arrays.fill(tenTimes1000, 1000);
        assertArrayEquals(tenTimes1000, test.labelCounts());
        // The first training image is an ankle boot (label 9), as in the Fashion-MNIST repository's sample.
        assertEquals(9, train.label(0));
    }

    @Test
    void classSubsetIsRenumberedWithItsNames() {
        IdxImageDataset subset = IdxImageDataset.builder()
                .images(train)
                .classNames(FashionMnist.CLASS_NAMES)
                .classes(5, 6, 7, 8, 9)
                .build();
        assertEquals(List.of("Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"), subset.classNames());
        assertEquals(30000, subset.size());
        assertArrayEquals(new int[] {6000, 6000, 6000, 6000, 6000}, subset.classCounts());
        assertEquals(4, subset.samples().get(0).label()); // image 0, an ankle boot
        for (int i = 0; i < subset.size(); i += 997) {
            assertEquals(train.label(subset.fileIndex(i)) - 5, subset.samples().get(i).label());
        }

        IdxImageDataset limited = IdxImageDataset.builder()
                .images(test)
                .classNames(FashionMnist.CLASS_NAMES)
                .classes(5, 6, 7, 8, 9)
                .limitPerClass(40)
                .build();
        assertArrayEquals(new int[] {40, 40, 40, 40, 40}, limited.classCounts());
    }

    @Test
    void committedQuickstartSubsetMatchesAFreshExport(@TempDir Path dir) throws Exception {
        Path committed = repositoryRoot().resolve("data/fashion-mnist-b");
        assertTrue(Files.isDirectory(committed.resolve("train")), committed + " is missing");
        FashionMnistExport.export(FashionMnist.DEBIAN_DIR, dir, new int[] {5, 6, 7, 8, 9}, 100, 40);
        List<String> expected = files(dir);
        assertEquals(700, expected.size());
        assertEquals(expected, files(committed), "regenerate with scripts/data/export-fashion-mnist-b.sh");
        for (String file : expected) {
            assertArrayEquals(Files.readAllBytes(dir.resolve(file)), Files.readAllBytes(committed.resolve(file)), file);
        }
        ImageFolderIndex.Split split = ImageFolderIndex.open(committed, 0, 0);
        assertEquals(List.of("ankle_boot", "bag", "sandal", "shirt", "sneaker"), split.train().classNames());
        assertArrayEquals(new int[] {40, 40, 40, 40, 40}, split.val().orElseThrow().classCounts());
    }

    @Test
    void evaluationOnTheIdxFolderFollowsTheModelsClassOrder() {
        // A model trained on three classes, its names as a folder-trained model would have them, in its own order.
        List<String> modelClasses = List.of("ankle_boot", "T-shirt/top", "Shirt");
        EvaluationSet set = EvaluationSet.open(FashionMnist.DEBIAN_DIR, modelClasses);
        ImageDataset ds = set.dataset();
        assertEquals(3000, ds.size());
        assertArrayEquals(new int[] {1000, 1000, 1000}, ds.classCounts());
        assertEquals(FashionMnist.DEBIAN_DIR, set.root());
        IdxImageDataset idx = (IdxImageDataset) ds;
        int[] modelLabelOfFileLabel = {1, -1, -1, -1, -1, -1, 2, -1, -1, 0};
        for (int i = 0; i < ds.size(); i++) {
            assertEquals(modelLabelOfFileLabel[test.label(idx.fileIndex(i))], ds.samples().get(i).label(), "sample " + i);
        }
    }

    @Test
    void evaluationOnTheIdxFolderNamesClassesFashionMnistDoesNotHave() {
        DataException e = assertThrows(DataException.class,
                () -> EvaluationSet.open(FashionMnist.DEBIAN_DIR, List.of("Sandal", "cat", "dog")));
        assertTrue(e.getMessage().contains("[cat, dog]"), e.getMessage());
        assertTrue(e.getMessage().contains("image folder"), e.getMessage());
    }

    private static List<String> files(Path root) throws Exception {
        try (Stream<Path> files = Files.walk(root)) {
            return files.filter(Files::isRegularFile)
                    .filter(p -> p.getFileName().toString().endsWith(".png"))
                    .map(p -> root.relativize(p).toString())
                    .sorted()
                    .toList();
        }
    }

    /** Surefire runs in the module folder; the data folder is at the repository root above it. */
    private static Path repositoryRoot() {
        Path dir = Path.of(System.getProperty("basedir", "")).toAbsolutePath();
        while (dir != null && !Files.isDirectory(dir.resolve("data/fashion-mnist-b"))) {
            dir = dir.getParent();
        }
        assertTrue(dir != null, "no data/fashion-mnist-b above " + System.getProperty("basedir", "."));
        return dir;
    }
}
