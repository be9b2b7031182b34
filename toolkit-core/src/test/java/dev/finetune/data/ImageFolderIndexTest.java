package dev.finetune.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.finetune.ErrorKind;
import dev.finetune.FinetuneException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ImageFolderIndexTest {
    @TempDir Path dir;

    private Path touch(String relative) throws IOException {
        Path file = dir.resolve(relative);
        Files.createDirectories(file.getParent());
        return Files.write(file, new byte[] {1});
    }

    @Test
    void alignedToAModelsClassesMatchesFolderSafeNamesAndRelabels() throws Exception {
        touch("v/tshirt_top/a.png");
        touch("v/trouser/b.png");
        touch("v/ankle_boot/c.png");
        touch("v/ankle_boot/d.png");
        ImageFolderIndex index = ImageFolderIndex.scan(dir.resolve("v"));
        assertEquals(List.of("ankle_boot", "trouser", "tshirt_top"), index.classNames());
        List<String> model = List.of("T-shirt/top", "Trouser", "Ankle boot");
        ImageFolderIndex aligned = index.alignedTo(model);
        assertEquals(model, aligned.classNames());
        assertEquals(List.of("tshirt_top/a.png:0", "trouser/b.png:1", "ankle_boot/c.png:2", "ankle_boot/d.png:2"),
                aligned.entries().stream().map(e -> e.relativePath() + ":" + e.label()).toList());
        assertArrayEquals(new int[] {1, 1, 2}, aligned.classCounts());
        assertTrue(index.alignedTo(index.classNames()) == index, "same names: the index itself");
        DataException e = assertThrows(DataException.class,
                () -> index.alignedTo(List.of("T-shirt/top", "Trouser", "Sandal")));
        assertTrue(e.getMessage().contains("no class for folder(s) [ankle_boot]; no folder for class(es) [Sandal]"),
                e.getMessage());
        assertEquals(ErrorKind.DATA, e.kind());
    }

    @Test
    void classesAreSortedFolderNamesAndImagesAreFoundByExtensionIgnoringCase() throws Exception {
        touch("data/zebra/b.JPG");
        touch("data/zebra/a.jpeg");
        touch("data/cat/x.png");
        touch("data/cat/nested/deeper/y.Bmp");
        touch("data/cat/z.gif");
        touch("data/cat/notes.txt");
        touch("data/cat/.hidden.png");
        touch("data/cat/.thumbs/t.png");
        touch("data/.ipynb_checkpoints/c.png");
        touch("data/loose.png");

        ImageFolderIndex index = ImageFolderIndex.scan(dir.resolve("data"));

        assertEquals(List.of("cat", "zebra"), index.classNames());
        assertEquals(
                List.of("cat/nested/deeper/y.Bmp", "cat/x.png", "cat/z.gif", "zebra/a.jpeg", "zebra/b.JPG"),
                index.entries().stream().map(ImageFolderIndex.Entry::relativePath).collect(Collectors.toList()));
        assertEquals(List.of(0, 0, 0, 1, 1),
                index.entries().stream().map(ImageFolderIndex.Entry::label).collect(Collectors.toList()));
        assertArrayEquals(new int[] {3, 2}, index.classCounts());
        assertEquals(1, index.entries().get(0).size());
    }

    @Test
    void emptyClassFolderIsAnErrorNamingIt() throws Exception {
        touch("data/cat/a.png");
        touch("data/dog/readme.txt");

        DataException e = assertThrows(DataException.class, () -> ImageFolderIndex.scan(dir.resolve("data")));

        assertEquals(ErrorKind.DATA, e.kind());
        assertEquals(
                dir.resolve("data/dog") + ": class folder dog has no images (.jpg .jpeg .png .bmp .gif) (it has 1"
                        + " other file(s), e.g. readme.txt); remove it or add images",
                e.getMessage());

        Files.delete(dir.resolve("data/dog/readme.txt"));
        e = assertThrows(DataException.class, () -> ImageFolderIndex.scan(dir.resolve("data")));
        assertEquals(
                dir.resolve("data/dog") + ": class folder dog has no images (.jpg .jpeg .png .bmp .gif); remove it or"
                        + " add images",
                e.getMessage());
    }

    @Test
    void missingRootIsAnError() {
        Path root = dir.resolve("nowhere");
        DataException e = assertThrows(DataException.class, () -> ImageFolderIndex.scan(root));
        assertEquals(
                root + ": data folder does not exist; expected one sub-folder per class: " + root + "/<class>/<image>",
                e.getMessage());
        e = assertThrows(DataException.class, () -> ImageFolderIndex.open(root, 0.2, 1));
        assertTrue(e.getMessage().startsWith(root + ": data folder does not exist"), e.getMessage());
    }

    @Test
    void rootThatIsAFileIsAnError() throws Exception {
        Path file = touch("file.png");
        DataException e = assertThrows(DataException.class, () -> ImageFolderIndex.scan(file));
        assertEquals(
                file + ": is a file, expected a data folder with one sub-folder per class: <folder>/<class>/<image>",
                e.getMessage());
    }

    @Test
    void rootWithoutClassFoldersIsAnErrorThatMentionsLooseImages() throws Exception {
        Files.createDirectories(dir.resolve("empty"));
        DataException e = assertThrows(DataException.class, () -> ImageFolderIndex.scan(dir.resolve("empty")));
        Path root = dir.resolve("empty");
        assertEquals(
                root + ": has no class folders; expected one sub-folder per class: " + root + "/<class>/<image>, e.g. "
                        + root.resolve("cat/001.jpg"),
                e.getMessage());

        touch("flat/a.png");
        touch("flat/b.jpg");
        e = assertThrows(DataException.class, () -> ImageFolderIndex.scan(dir.resolve("flat")));
        assertTrue(
                e.getMessage().contains("has no class folders (found 2 images directly in it: move them into a folder"
                        + " named after their class)"),
                e.getMessage());
    }

    @Test
    void trainAndValFoldersShareTrainingClassList() throws Exception {
        touch("d/train/a/1.png");
        touch("d/train/b/2.png");
        touch("d/train/c/3.png");
        touch("d/val/b/4.png");
        touch("d/val/c/5.png");
        touch("d/test/q/6.png");

        ImageFolderIndex.Split split = ImageFolderIndex.open(dir.resolve("d"), 0, 7);

        assertEquals(List.of("a", "b", "c"), split.train().classNames());
        ImageFolderIndex val = split.val().orElseThrow();
        assertEquals(List.of("a", "b", "c"), val.classNames());
        assertEquals(List.of(1, 2), val.entries().stream().map(ImageFolderIndex.Entry::label).toList());
        assertEquals(dir.resolve("d/val"), val.root());
        assertEquals(dir.resolve("d/train"), split.train().root());
    }

    @Test
    void valClassUnknownToTrainingIsAnError() throws Exception {
        touch("d/train/a/1.png");
        touch("d/val/a/2.png");
        touch("d/val/x/3.png");
        DataException e = assertThrows(DataException.class, () -> ImageFolderIndex.open(dir.resolve("d"), 0, 7));
        assertEquals(
                dir.resolve("d/val/x") + ": validation class folder x has no matching training folder "
                        + dir.resolve("d/train/x") + "; rename or remove it",
                e.getMessage());
    }

    @Test
    void valWithoutTrainIsAnError() throws Exception {
        touch("d/val/a/2.png");
        DataException e = assertThrows(DataException.class, () -> ImageFolderIndex.open(dir.resolve("d"), 0, 7));
        assertTrue(e.getMessage().startsWith(dir.resolve("d") + ": has a val/ folder but no train/ folder"));
    }

    @Test
    void valSplitTogetherWithValFolderIsAConfigError() throws Exception {
        touch("d/train/a/1.png");
        touch("d/val/a/2.png");
        FinetuneException e =
                assertThrows(FinetuneException.class, () -> ImageFolderIndex.open(dir.resolve("d"), 0.2, 7));
        assertEquals(ErrorKind.CONFIG, e.kind());
        assertTrue(e.getMessage().startsWith("val_split is 0.2 but " + dir.resolve("d/val") + " exists"));

        e = assertThrows(FinetuneException.class, () -> ImageFolderIndex.open(dir.resolve("d"), 1.0, 7));
        assertEquals("val_split must be >= 0 and < 1, found 1.0", e.getMessage());
    }

    @Test
    void valSplitIsStratifiedSeededAndStableWhenFilesAreAdded() throws Exception {
        for (int i = 0; i < 50; i++) {
            touch(String.format("d/cat/%03d.png", i));
        }
        for (int i = 0; i < 10; i++) {
            touch(String.format("d/dog/%03d.png", i));
        }
        touch("d/eel/only.png");
        Path root = dir.resolve("d");

        ImageFolderIndex.Split a = ImageFolderIndex.open(root, 0.2, 42);
        ImageFolderIndex.Split b = ImageFolderIndex.open(root, 0.2, 42);
        ImageFolderIndex.Split c = ImageFolderIndex.open(root, 0.2, 43);

        ImageFolderIndex val = a.val().orElseThrow();
        assertArrayEquals(new int[] {10, 2, 0}, val.classCounts());
        assertArrayEquals(new int[] {40, 8, 1}, a.train().classCounts());
        assertEquals(paths(val), paths(b.val().orElseThrow()));
        assertNotEquals(paths(val), paths(c.val().orElseThrow()));
        Set<String> overlap = new HashSet<>(paths(val));
        overlap.retainAll(paths(a.train()));
        assertTrue(overlap.isEmpty());

        // Membership depends on each file's own key, so a new file can displace at most one held-out image; no
        // training image may jump into validation because of it (the quota may grow by one).
        touch("d/cat/050.png");
        ImageFolderIndex.Split grown = ImageFolderIndex.open(root, 0.2, 42);
        Set<String> before = new HashSet<>(paths(a.train()));
        Set<String> movedToVal = new HashSet<>(paths(grown.val().orElseThrow()));
        movedToVal.retainAll(before);
        assertTrue(movedToVal.size() <= 1, "adding one file moved " + movedToVal + " into validation");
    }

    @Test
    void noValidationWithoutValFolderOrFraction() throws Exception {
        touch("d/a/1.png");
        ImageFolderIndex.Split split = ImageFolderIndex.open(dir.resolve("d"), 0, 1);
        assertFalse(split.val().isPresent());
        assertEquals(1, split.train().size());
    }

    private static List<String> paths(ImageFolderIndex index) {
        return index.entries().stream().map(ImageFolderIndex.Entry::relativePath).toList();
    }
}
