package dev.finetune.data;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.zip.CRC32;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What {@link ImageDecoder} refuses, and how: like PIL, a truncated file and a PNG header chunk with a bad CRC are
 * errors (libjpeg alone would fill a truncated JPEG with gray and carry on, ImageIO ignores CRCs), and anything that
 * is not a PNG, JPEG, BMP or GIF is named as such.
 * {@link PreprocessingParityTest} checks the pixels of valid files against PIL.
 */
class ImageDecoderTest {
    @TempDir Path dir;

    @Test
    void decodesWhatTheJdkWrites() throws Exception {
        for (String ext : new String[] {"png", "bmp", "gif"}) {
            // 15 x 16: 240 colours, so the GIF writer's palette holds them all exactly
            RgbImage image = ImageDecoder.read(ImageFixtures.gradient(dir.resolve("g." + ext), 15, 16));
            assertEquals(15, image.width());
            assertEquals(16, image.height());
            assertEquals(14, image.get(14, 15, 0), ext); // lossless: red = column
            assertEquals(15, image.get(14, 15, 1), ext); // green = row
            assertEquals(0, image.get(14, 15, 2), ext);
        }
        RgbImage jpeg = ImageDecoder.read(ImageFixtures.solid(dir.resolve("s.jpg"), 17, 9, 0x808080));
        assertEquals(17, jpeg.width());
        assertTrue(Math.abs(jpeg.get(8, 4, 1) - 128) <= 1);
    }

    @Test
    void truncatedJpegIsAnErrorAsInPil() throws Exception {
        byte[] whole = Files.readAllBytes(ImageFixtures.gradient(dir.resolve("g.jpg"), 97, 61));
        ImageDecoder.decode(whole);
        for (int cut : new int[] {2, 10, whole.length / 2}) {
            byte[] part = Arrays.copyOf(whole, whole.length - cut);
            IOException e = assertThrows(IOException.class, () -> ImageDecoder.decode(part), "cut " + cut);
            assertTrue(e.getMessage().startsWith("truncated JPEG file"), e.getMessage());
        }
    }

    @Test
    void truncatedOrCorruptPngIsAnError() throws Exception {
        byte[] whole = Files.readAllBytes(ImageFixtures.gradient(dir.resolve("g.png"), 97, 61));
        assertThrows(IOException.class, () -> ImageDecoder.decode(Arrays.copyOf(whole, whole.length / 2)));
        assertThrows(IOException.class, () -> ImageDecoder.decode(Arrays.copyOf(whole, 20)));
        byte[] badCrc = whole.clone();
        badCrc[25] ^= 4; // IHDR colour type 2 -> 6, CRC left as it was
        IOException e = assertThrows(IOException.class, () -> ImageDecoder.decode(badCrc));
        assertEquals("broken PNG file (bad checksum in chunk IHDR)", e.getMessage());
        byte[] badType = whole.clone();
        badType[25] = 5; // IHDR colour type 5 does not exist
        CRC32 crc = new CRC32();
        crc.update(badType, 12, 17); // "IHDR" + 13 data bytes
        ByteBuffer.wrap(badType, 29, 4).putInt((int) crc.getValue());
        e = assertThrows(IOException.class, () -> ImageDecoder.decode(badType));
        assertEquals("PNG bit depth 8 with colour type 5 is not a valid combination (PIL cannot open it either)",
                e.getMessage());
    }

    @Test
    void otherFilesAreNamedForWhatTheyAreNot() {
        IOException e = assertThrows(IOException.class, () -> ImageDecoder.decode("not an image".getBytes()));
        assertEquals("not a PNG, JPEG, BMP or GIF file (it starts with 6e 6f 74 20 61 6e 20 69)", e.getMessage());
        e = assertThrows(IOException.class, () -> ImageDecoder.decode(new byte[0]));
        assertEquals("not a PNG, JPEG, BMP or GIF file (it starts with nothing)", e.getMessage());
        assertThrows(IOException.class, () -> ImageDecoder.decode(new byte[] {'B', 'M', 1, 2}));
        assertThrows(IOException.class, () -> ImageDecoder.decode(new byte[] {'G', 'I', 'F', '8', '9', 'a'}));
        assertThrows(IOException.class, () -> ImageDecoder.decode(new byte[] {(byte) 0xFF, (byte) 0xD8, (byte) 0xFF}));
    }
}
