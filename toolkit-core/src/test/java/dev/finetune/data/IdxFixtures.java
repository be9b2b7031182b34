package dev.finetune.data;

import java.io.ByteArrayOutputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.zip.GZIPOutputStream;

/** Writes small IDX files for tests; image {@code i} has every pixel equal to {@code (i * 7 + y) & 0xFF} per row y. */
final class IdxFixtures {
    private IdxFixtures() {}

    /** Header + payload of an images file with a correct header. */
    static byte[] imagesBytes(int count, int rows, int cols) throws IOException {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        DataOutputStream out = new DataOutputStream(bytes);
        out.writeInt(IdxReader.IMAGES_MAGIC);
        out.writeInt(count);
        out.writeInt(rows);
        out.writeInt(cols);
        for (int i = 0; i < count; i++) {
            for (int y = 0; y < rows; y++) {
                for (int x = 0; x < cols; x++) {
                    out.writeByte(pixel(i, y));
                }
            }
        }
        return bytes.toByteArray();
    }

    static int pixel(int image, int row) {
        return (image * 7 + row) & 0xFF;
    }

    static byte[] labelsBytes(int... labels) throws IOException {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        DataOutputStream out = new DataOutputStream(bytes);
        out.writeInt(IdxReader.LABELS_MAGIC);
        out.writeInt(labels.length);
        for (int label : labels) {
            out.writeByte(label);
        }
        return bytes.toByteArray();
    }

    static Path write(Path file, byte[] content, boolean gzip) throws IOException {
        if (!gzip) {
            return Files.write(file, content);
        }
        try (OutputStream out = new GZIPOutputStream(Files.newOutputStream(file))) {
            out.write(content);
        }
        return file;
    }

    static byte[] gzip(byte[] content) throws IOException {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (OutputStream out = new GZIPOutputStream(bytes)) {
            out.write(content);
        }
        return bytes.toByteArray();
    }

    /** Writes a matching {@code name-images-idx3-ubyte[.gz]} / {@code name-labels-idx1-ubyte[.gz]} pair. */
    static Path[] writePair(Path dir, String name, int rows, int cols, boolean gzip, int... labels)
            throws IOException {
        String ext = gzip ? ".gz" : "";
        Path images = write(dir.resolve(name + "-images-idx3-ubyte" + ext), imagesBytes(labels.length, rows, cols), gzip);
        Path labelFile = write(dir.resolve(name + "-labels-idx1-ubyte" + ext), labelsBytes(labels), gzip);
        return new Path[] {images, labelFile};
    }
}
