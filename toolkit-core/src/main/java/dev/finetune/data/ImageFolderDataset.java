package dev.finetune.data;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HexFormat;
import java.util.List;

/**
 * An {@link ImageDataset} over the files of an {@link ImageFolderIndex}, decoded by {@link ImageDecoder} to exactly
 * what torchvision's {@code ImageFolder} loader gets, {@code PIL.Image.open(f).convert("RGB")}: grayscale, palette and
 * RGBA files all become RGB, alpha dropped.
 */
public final class ImageFolderDataset implements ImageDataset {
    private final ImageFolderIndex index;
    private final List<Sample> samples;
    private volatile String fingerprint;

    public ImageFolderDataset(ImageFolderIndex index) {
        this.index = index;
        List<Sample> list = new ArrayList<>(index.size());
        for (ImageFolderIndex.Entry entry : index.entries()) {
            list.add(new FileSample(entry));
        }
        this.samples = Collections.unmodifiableList(list);
    }

    @Override
    public List<String> classNames() {
        return index.classNames();
    }

    @Override
    public List<Sample> samples() {
        return samples;
    }

    /** The index this dataset was built from. */
    public ImageFolderIndex index() {
        return index;
    }

    /**
     * SHA-256 over the class names and, per image, its path relative to the index root, size and modification time
     * as seen at scan time. Image bytes are not read: a 100k-image folder fingerprints in milliseconds, at the cost of
     * missing an edit that keeps size and mtime.
     */
    @Override
    public String fingerprint() {
        String result = fingerprint;
        if (result == null) {
            MessageDigest sha = sha256();
            update(sha, "image-folder-v1\n");
            update(sha, String.join("\u0000", index.classNames()) + "\n");
            for (ImageFolderIndex.Entry e : index.entries()) {
                update(sha, e.label() + "\u0000" + e.relativePath() + "\u0000" + e.size() + "\u0000"
                        + e.lastModifiedMillis() + "\n");
            }
            result = HexFormat.of().formatHex(sha.digest());
            fingerprint = result;
        }
        return result;
    }

    private static void update(MessageDigest sha, String text) {
        sha.update(text.getBytes(StandardCharsets.UTF_8));
    }

    private static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("every Java runtime has SHA-256", e);
        }
    }

    private static final class FileSample implements Sample {
        private final ImageFolderIndex.Entry entry;

        FileSample(ImageFolderIndex.Entry entry) {
            this.entry = entry;
        }

        @Override
        public int label() {
            return entry.label();
        }

        @Override
        public String source() {
            return entry.file().toString();
        }

        @Override
        public RgbImage decode() {
            try {
                return ImageDecoder.read(entry.file());
            } catch (IOException | RuntimeException e) {
                // A missing file, a corrupt or truncated one, or a variant PIL cannot open: to the user they are all
                // the same problem.
                throw new DataException(
                        entry.file(),
                        "cannot be decoded as an image (" + e.getMessage() + "); replace or delete the file, or use"
                                + " the SKIP bad-image policy to leave such files out",
                        e);
            }
        }

        @Override
        public String toString() {
            return source() + " (label " + entry.label() + ")";
        }
    }
}
