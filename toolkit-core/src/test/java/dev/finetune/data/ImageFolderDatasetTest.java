package dev.finetune.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.finetune.ErrorKind;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ImageFolderDatasetTest {
    @TempDir Path dir;

    @Test
    void grayscaleRgbaAndRgbAllDecodeToRgb() throws Exception {
        ImageFixtures.gray(dir.resolve("d/a/gray.png"), 3, 2, 200);
        ImageFixtures.rgba(dir.resolve("d/a/rgba.png"), 3, 2, 0x80102030);
        ImageFixtures.solid(dir.resolve("d/b/rgb.bmp"), 3, 2, 0x405060);
        ImageFixtures.solid(dir.resolve("d/b/rgb.gif"), 3, 2, 0x000000);

        ImageFolderDataset ds = new ImageFolderDataset(ImageFolderIndex.scan(dir.resolve("d")));

        assertEquals(List.of("a", "b"), ds.classNames());
        assertEquals(List.of(0, 0, 1, 1), ds.samples().stream().map(ImageDataset.Sample::label).toList());
        assertPixel(ds.samples().get(0).decode(), 200, 200, 200);
        assertPixel(ds.samples().get(1).decode(), 0x10, 0x20, 0x30); // alpha dropped, as PIL does
        assertPixel(ds.samples().get(2).decode(), 0x40, 0x50, 0x60);
        assertPixel(ds.samples().get(3).decode(), 0, 0, 0);
    }

    private static void assertPixel(RgbImage image, int r, int g, int b) {
        assertEquals(3, image.width());
        assertEquals(2, image.height());
        assertArrayEquals(new int[] {r, g, b},
                new int[] {image.get(2, 1, 0), image.get(2, 1, 1), image.get(2, 1, 2)});
    }

    @Test
    void corruptImageIsADataErrorNamingTheFile() throws Exception {
        ImageFixtures.solid(dir.resolve("d/a/good.png"), 4, 4, 0);
        Path bad = ImageFixtures.corruptPng(dir.resolve("d/a/bad.png"));
        Path text = Files.writeString(dir.resolve("d/a/text.jpg"), "not an image");
        ImageFolderDataset ds = new ImageFolderDataset(ImageFolderIndex.scan(dir.resolve("d")));

        DataException e = assertThrows(DataException.class, () -> ds.samples().get(0).decode());
        assertEquals(ErrorKind.DATA, e.kind());
        assertEquals(bad.toString(), ds.samples().get(0).source());
        assertStartsWithAndEndsWith(bad + ": cannot be decoded as an image (", e.getMessage());

        e = assertThrows(DataException.class, () -> ds.samples().get(2).decode());
        assertStartsWithAndEndsWith(text + ": cannot be decoded as an image (", e.getMessage());
    }

    private static void assertStartsWithAndEndsWith(String prefix, String message) {
        String suffix = "); replace or delete the file, or use the SKIP bad-image policy to leave such files out";
        assertTrue(message.startsWith(prefix) && message.endsWith(suffix), message);
    }

    @Test
    void fingerprintFollowsPathsSizesAndTimesButNotContent() throws Exception {
        Path a = ImageFixtures.solid(dir.resolve("d/a/1.png"), 4, 4, 0x112233);
        ImageFixtures.solid(dir.resolve("d/b/2.png"), 4, 4, 0x445566);
        String first = new ImageFolderDataset(ImageFolderIndex.scan(dir.resolve("d"))).fingerprint();
        String again = new ImageFolderDataset(ImageFolderIndex.scan(dir.resolve("d"))).fingerprint();
        assertEquals(64, first.length());
        assertEquals(first, again);

        Files.setLastModifiedTime(a, FileTime.fromMillis(Files.getLastModifiedTime(a).toMillis() + 5000));
        String touched = new ImageFolderDataset(ImageFolderIndex.scan(dir.resolve("d"))).fingerprint();
        assertNotEquals(first, touched);

        ImageFixtures.solid(dir.resolve("d/b/3.png"), 4, 4, 0x445566);
        String added = new ImageFolderDataset(ImageFolderIndex.scan(dir.resolve("d"))).fingerprint();
        assertNotEquals(touched, added);
    }
}
