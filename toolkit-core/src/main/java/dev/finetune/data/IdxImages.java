package dev.finetune.data;

import java.nio.file.Path;
import java.util.Arrays;

/**
 * The contents of a matching pair of IDX files: {@code count} grayscale images of {@code rows x cols} unsigned bytes
 * and one unsigned-byte label per image, both in file order. Built by {@link IdxReader#read(Path, Path)}; immutable.
 */
public final class IdxImages {
    private final Path imagesFile;
    private final Path labelsFile;
    private final int count;
    private final int rows;
    private final int cols;
    private final byte[] pixels;
    private final byte[] labels;
    private final String imagesSha256;
    private final String labelsSha256;

    IdxImages(
            Path imagesFile,
            Path labelsFile,
            int count,
            int rows,
            int cols,
            byte[] pixels,
            byte[] labels,
            String imagesSha256,
            String labelsSha256) {
        this.imagesFile = imagesFile;
        this.labelsFile = labelsFile;
        this.count = count;
        this.rows = rows;
        this.cols = cols;
        this.pixels = pixels;
        this.labels = labels;
        this.imagesSha256 = imagesSha256;
        this.labelsSha256 = labelsSha256;
    }

    public Path imagesFile() {
        return imagesFile;
    }

    public Path labelsFile() {
        return labelsFile;
    }

    /** Number of images (and labels). */
    public int count() {
        return count;
    }

    public int rows() {
        return rows;
    }

    public int cols() {
        return cols;
    }

    /** The label of image {@code index}, 0..255. */
    public int label(int index) {
        return labels[index] & 0xFF;
    }

    /** A copy of image {@code index}: {@code rows * cols} gray levels, row by row (0 = black in the file's terms). */
    public byte[] image(int index) {
        int size = rows * cols;
        return Arrays.copyOfRange(pixels, index * size, (index + 1) * size);
    }

    /** How many images carry each label; the array is as long as the largest label + 1. */
    public int[] labelCounts() {
        int max = -1;
        for (byte b : labels) {
            max = Math.max(max, b & 0xFF);
        }
        int[] counts = new int[max + 1];
        for (byte b : labels) {
            counts[b & 0xFF]++;
        }
        return counts;
    }

    /** SHA-256 (hex) of the images file as stored on disk (compressed bytes if it is gzipped). */
    public String imagesSha256() {
        return imagesSha256;
    }

    /** SHA-256 (hex) of the labels file as stored on disk. */
    public String labelsSha256() {
        return labelsSha256;
    }
}
