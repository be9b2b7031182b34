package dev.finetune.data;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import javax.imageio.ImageIO;

/** Writes small image files for tests. */
final class ImageFixtures {
    private ImageFixtures() {}

    /** An RGB image filled with one colour, in the format named by the file extension. */
    static Path solid(Path file, int width, int height, int rgb) throws IOException {
        BufferedImage image = new BufferedImage(width, height, BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < height; y++) {
            for (int x = 0; x < width; x++) {
                image.setRGB(x, y, rgb);
            }
        }
        return write(image, file);
    }

    /** An RGB image whose red channel is the column index and green the row index (blue 0). */
    static Path gradient(Path file, int width, int height) throws IOException {
        BufferedImage image = new BufferedImage(width, height, BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < height; y++) {
            for (int x = 0; x < width; x++) {
                image.setRGB(x, y, ((x & 0xFF) << 16) | ((y & 0xFF) << 8));
            }
        }
        return write(image, file);
    }

    static Path gray(Path file, int width, int height, int level) throws IOException {
        BufferedImage image = new BufferedImage(width, height, BufferedImage.TYPE_BYTE_GRAY);
        for (int y = 0; y < height; y++) {
            for (int x = 0; x < width; x++) {
                image.getRaster().setSample(x, y, 0, level);
            }
        }
        return write(image, file);
    }

    static Path rgba(Path file, int width, int height, int argb) throws IOException {
        BufferedImage image = new BufferedImage(width, height, BufferedImage.TYPE_INT_ARGB);
        for (int y = 0; y < height; y++) {
            for (int x = 0; x < width; x++) {
                image.setRGB(x, y, argb);
            }
        }
        return write(image, file);
    }

    /** A file named like a PNG whose content is a PNG cut off after its first 40 bytes. */
    static Path corruptPng(Path file) throws IOException {
        Path whole = solid(file, 16, 16, 0x336699);
        byte[] bytes = Files.readAllBytes(whole);
        return Files.write(file, java.util.Arrays.copyOf(bytes, 40));
    }

    private static Path write(BufferedImage image, Path file) throws IOException {
        Files.createDirectories(file.getParent());
        String name = file.getFileName().toString();
        String format = name.substring(name.lastIndexOf('.') + 1).toLowerCase(java.util.Locale.ROOT);
        if (format.equals("jpeg")) {
            format = "jpg";
        }
        if (!ImageIO.write(image, format, file.toFile())) {
            throw new IOException("no ImageIO writer for " + format);
        }
        return file;
    }
}
