package dev.finetune.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.finetune.ErrorKind;
import dev.finetune.FinetuneException;
import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class FashionMnistExportTest {
    @TempDir Path dir;
    private Path idxDir;

    @BeforeEach
    void writeFakeFashionMnist() throws Exception {
        idxDir = Files.createDirectories(dir.resolve("idx"));
        // train: labels 5 9 5 0 9 5; t10k: 9 5 5 9
        IdxFixtures.writePair(idxDir, "train", 28, 28, true, 5, 9, 5, 0, 9, 5);
        IdxFixtures.writePair(idxDir, "t10k", 28, 28, false, 9, 5, 5, 9);
    }

    private static List<String> tree(Path root) throws Exception {
        try (Stream<Path> files = Files.walk(root)) {
            return files.filter(Files::isRegularFile).map(p -> root.relativize(p).toString()).sorted().toList();
        }
    }

    @Test
    void writesFirstImagesOfEachClassNamedByTheirIndexInTheFile() throws Exception {
        Path out = dir.resolve("out");
        int written = FashionMnistExport.run(new String[] {idxDir.toString(), out.toString(), "5,9", "2", "1"});

        assertEquals(6, written);
        assertEquals(
                List.of("train/ankle_boot/00001.png", "train/ankle_boot/00004.png", "train/sandal/00000.png",
                        "train/sandal/00002.png", "val/ankle_boot/00000.png", "val/sandal/00001.png"),
                tree(out));
        BufferedImage png = ImageIO.read(out.resolve("train/sandal/00002.png").toFile());
        assertEquals(BufferedImage.TYPE_BYTE_GRAY, png.getType());
        assertEquals(28, png.getWidth());
        assertEquals(IdxFixtures.pixel(2, 27), png.getRaster().getSample(5, 27, 0));
    }

    @Test
    void outputIsReproducibleByteForByte() throws Exception {
        FashionMnistExport.export(idxDir, dir.resolve("a"), new int[] {5, 9}, 2, 1);
        FashionMnistExport.export(idxDir, dir.resolve("b"), new int[] {5, 9}, 2, 1);
        for (String file : tree(dir.resolve("a"))) {
            assertArrayEquals(Files.readAllBytes(dir.resolve("a").resolve(file)),
                    Files.readAllBytes(dir.resolve("b").resolve(file)), file);
        }
    }

    @Test
    void refusesToWriteOverAnExistingExport() throws Exception {
        Files.createDirectories(dir.resolve("out/train"));
        FinetuneException e = assertThrows(FinetuneException.class,
                () -> FashionMnistExport.export(idxDir, dir.resolve("out"), new int[] {5}, 1, 1));
        assertEquals(ErrorKind.OUTPUT, e.kind());
        assertEquals(dir.resolve("out/train") + ": already exists; delete it first to regenerate the export",
                e.getMessage());
    }

    @Test
    void askingForMoreImagesThanAClassHasIsADataError() {
        DataException e = assertThrows(DataException.class,
                () -> FashionMnistExport.export(idxDir, dir.resolve("out"), new int[] {5, 9}, 3, 1));
        assertEquals(
                idxDir.resolve("train-labels-idx1-ubyte.gz") + ": has only 2 images of class 9 (Ankle boot), 3 were"
                        + " asked for; ask for fewer",
                e.getMessage());
    }

    @Test
    void badArgumentsAreUsageErrors() {
        FinetuneException e = assertThrows(FinetuneException.class, () -> FashionMnistExport.run(new String[] {"x"}));
        assertEquals(ErrorKind.USAGE, e.kind());
        e = assertThrows(FinetuneException.class,
                () -> FashionMnistExport.run(new String[] {"a", "b", "5,x", "1", "1"}));
        assertEquals(ErrorKind.USAGE, e.kind());
    }

    @Test
    void missingIdxFolderSaysHowToGetTheData() {
        Path nowhere = dir.resolve("nowhere");
        DataException e = assertThrows(DataException.class,
                () -> FashionMnistExport.export(nowhere, dir.resolve("out"), new int[] {5}, 1, 1));
        assertEquals(
                nowhere + ": Fashion-MNIST folder does not exist; install the Debian package dataset-fashion-mnist"
                        + " (files go to /usr/share/datasets/fashion-mnist) or point to a folder holding the four"
                        + " *-ubyte[.gz] files",
                e.getMessage());
    }
}
