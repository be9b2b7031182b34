package dev.finetune.checkpoint;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Enumeration;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.BiFunction;
import java.util.stream.Stream;
import java.util.zip.CRC32;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;
import java.util.zip.ZipOutputStream;

/** Small helpers for building and damaging test files. */
final class TestFiles {
    private TestFiles() {
    }

    /** SHA-256 of the values as little-endian fp32, as the fixture script computes it in numpy. */
    static String fp32Sha256(float[] values) {
        ByteBuffer buf = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        buf.asFloatBuffer().put(values);
        return sha256(buf.array());
    }

    static String sha256(byte[] bytes) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** All entries of a zip, by name, in order. */
    static Map<String, byte[]> readZip(Path zip) throws IOException {
        Map<String, byte[]> out = new LinkedHashMap<>();
        try (ZipFile z = new ZipFile(zip.toFile())) {
            Enumeration<? extends ZipEntry> entries = z.entries();
            while (entries.hasMoreElements()) {
                ZipEntry e = entries.nextElement();
                out.put(e.getName(), z.getInputStream(e).readAllBytes());
            }
        }
        return out;
    }

    /** Writes entries as a zip of stored entries, as torch does. */
    static void writeZip(Path zip, Map<String, byte[]> entries) throws IOException {
        try (OutputStream os = Files.newOutputStream(zip); ZipOutputStream z = new ZipOutputStream(os)) {
            for (Map.Entry<String, byte[]> e : entries.entrySet()) {
                ZipEntry entry = new ZipEntry(e.getKey());
                entry.setMethod(ZipEntry.STORED);
                entry.setSize(e.getValue().length);
                CRC32 crc = new CRC32();
                crc.update(e.getValue());
                entry.setCrc(crc.getValue());
                z.putNextEntry(entry);
                z.write(e.getValue());
                z.closeEntry();
            }
        }
    }

    /** Copies a zip, passing each entry through {@code edit} (return null to drop the entry). */
    static void rewriteZip(Path from, Path to, BiFunction<String, byte[], byte[]> edit) throws IOException {
        Map<String, byte[]> out = new LinkedHashMap<>();
        for (Map.Entry<String, byte[]> e : readZip(from).entrySet()) {
            byte[] edited = edit.apply(e.getKey(), e.getValue());
            if (edited != null) {
                out.put(e.getKey(), edited);
            }
        }
        writeZip(to, out);
    }

    /** Files in {@code dir} whose name is not {@code keep}: the leftovers an atomic write must not leave. */
    static long strayFiles(Path dir, String... keep) throws IOException {
        try (Stream<Path> files = Files.list(dir)) {
            return files.map(p -> p.getFileName().toString())
                    .filter(n -> Stream.of(keep).noneMatch(n::equals))
                    .count();
        }
    }
}
