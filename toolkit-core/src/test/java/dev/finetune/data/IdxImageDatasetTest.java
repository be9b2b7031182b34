package dev.finetune.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.finetune.ErrorKind;
import dev.finetune.FinetuneException;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class IdxImageDatasetTest {
    private static final List<String> NAMES = List.of("zero", "one", "two", "three");

    @TempDir Path dir;
    private IdxImages data;

    @BeforeEach
    void writeIdx() throws Exception {
        // file order: labels 3 1 3 0 1 3 2
        Path[] pair = IdxFixtures.writePair(dir, "t", 4, 5, true, 3, 1, 3, 0, 1, 3, 2);
        data = IdxReader.read(pair[0], pair[1]);
    }

    @Test
    void allClassesByDefault() {
        IdxImageDataset ds = IdxImageDataset.builder().images(data).classNames(NAMES).build();
        assertEquals(NAMES, ds.classNames());
        assertEquals(7, ds.size());
        assertArrayEquals(new int[] {1, 2, 1, 3}, ds.classCounts());
        assertEquals(3, ds.samples().get(0).label());
        assertEquals(data.imagesFile() + "#6", ds.samples().get(6).source());
    }

    @Test
    void subsetIsRenumberedInTheGivenOrderAndLimitedPerClassInFileOrder() {
        IdxImageDataset ds = IdxImageDataset.builder()
                .images(data)
                .classNames(NAMES)
                .classes(3, 1)
                .limitPerClass(2)
                .build();

        assertEquals(List.of("three", "one"), ds.classNames());
        assertEquals(List.of(0, 1, 0, 1), ds.samples().stream().map(ImageDataset.Sample::label).toList());
        assertEquals(List.of(0, 1, 2, 4), List.of(ds.fileIndex(0), ds.fileIndex(1), ds.fileIndex(2), ds.fileIndex(3)));
    }

    @Test
    void decodesToThreeEqualChannels() {
        IdxImageDataset ds = IdxImageDataset.builder().images(data).classNames(NAMES).build();
        RgbImage image = ds.samples().get(2).decode();
        assertEquals(5, image.width());
        assertEquals(4, image.height());
        // PIL's convert("RGB") of a mode L image: the value in all three channels
        int expected = IdxFixtures.pixel(2, 3) & 0xFF;
        assertArrayEquals(new int[] {expected, expected, expected},
                new int[] {image.get(4, 3, 0), image.get(4, 3, 1), image.get(4, 3, 2)});
    }

    @Test
    void fingerprintIsStableAndCoversTheSubset() throws Exception {
        String all = IdxImageDataset.builder().images(data).classNames(NAMES).build().fingerprint();
        Path[] again = IdxFixtures.writePair(dir, "t", 4, 5, true, 3, 1, 3, 0, 1, 3, 2);
        String reread = IdxImageDataset.builder()
                .images(IdxReader.read(again[0], again[1])).classNames(NAMES).build().fingerprint();
        String subset = IdxImageDataset.builder().images(data).classNames(NAMES).classes(1, 3).build()
                .fingerprint();
        String limited = IdxImageDataset.builder().images(data).classNames(NAMES).limitPerClass(1).build()
                .fingerprint();
        assertEquals(64, all.length());
        assertEquals(all, reread);
        assertNotEquals(all, subset);
        assertNotEquals(all, limited);
    }

    @Test
    void badSubsetsAreConfigErrors() {
        FinetuneException e = assertThrows(FinetuneException.class,
                () -> IdxImageDataset.builder().images(data).classNames(NAMES).classes(1, 9).build());
        assertEquals(ErrorKind.CONFIG, e.kind());
        assertEquals("classes: class id 9 is out of range 0..3", e.getMessage());
        e = assertThrows(FinetuneException.class,
                () -> IdxImageDataset.builder().images(data).classNames(NAMES).classes(1, 1).build());
        assertEquals("classes: class id 1 is listed twice; list each once", e.getMessage());
        e = assertThrows(FinetuneException.class,
                () -> IdxImageDataset.builder().images(data).classNames(NAMES).limitPerClass(-1).build());
        assertEquals("limit per class must be >= 0 (0 = no limit), found -1", e.getMessage());
    }

    @Test
    void labelsWithoutNamesAndAbsentClassesAreDataErrors() throws Exception {
        DataException e = assertThrows(DataException.class,
                () -> IdxImageDataset.builder().images(data).classNames(List.of("a", "b", "c")).build());
        assertEquals(
                data.labelsFile() + ": label 3 of sample 0 has no class name: 3 names were given (labels 0..2); give a"
                        + " name for every label or use the matching labels file",
                e.getMessage());

        List<String> five = List.of("a", "b", "c", "d", "e");
        e = assertThrows(DataException.class,
                () -> IdxImageDataset.builder().images(data).classNames(five).classes(4, 0).build());
        assertEquals(
                data.labelsFile() + ": has no images of class 4 (e); leave the class out of the subset or use a file"
                        + " that has it",
                e.getMessage());
    }
}
