package dev.finetune.data;

import dev.finetune.ConfigException;
import dev.finetune.FinetuneException;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HexFormat;
import java.util.List;

/**
 * An {@link ImageDataset} over the images of an {@link IdxImages}, optionally restricted to some classes (renumbered
 * 0..k-1 in the order given, keeping their names) and to the first N images of each class in file order.
 *
 * <p>Images are grayscale; {@link Sample#decode()} repeats each value into three equal channels, as PIL's
 * {@code convert("RGB")} does for a mode {@code "L"} image (torchvision's {@code FashionMNIST} gives mode L images),
 * so the ImageNet-pretrained stem sees the input it expects.
 *
 * <pre>{@code
 * IdxImages train = FashionMnist.readTrain(FashionMnist.DEBIAN_DIR);
 * ImageDataset ds = IdxImageDataset.builder()
 *         .images(train).classNames(FashionMnist.CLASS_NAMES)
 *         .classes(5, 6, 7, 8, 9)        // Sandal..Ankle boot become labels 0..4
 *         .limitPerClass(100)
 *         .build();
 * }</pre>
 */
public final class IdxImageDataset implements ImageDataset {
    private final IdxImages data;
    private final List<String> classNames;
    private final List<Sample> samples;
    private final String fingerprint;

    private IdxImageDataset(Builder builder) {
        this.data = builder.images;
        int[] classIds = builder.classIds;
        List<String> names = new ArrayList<>();
        int[] newLabel = new int[256];
        Arrays.fill(newLabel, -1);
        for (int i = 0; i < classIds.length; i++) {
            names.add(builder.classNames.get(classIds[i]));
            newLabel[classIds[i]] = i;
        }
        this.classNames = Collections.unmodifiableList(names);
        int[] taken = new int[classIds.length];
        List<Sample> list = new ArrayList<>();
        for (int i = 0; i < data.count(); i++) {
            int original = data.label(i);
            if (original >= builder.classNames.size()) {
                throw new DataException(
                        data.labelsFile(),
                        "label " + original + " of sample " + i + " has no class name: " + builder.classNames.size()
                                + " names were given (labels 0.." + (builder.classNames.size() - 1)
                                + "); give a name for every label or use the matching labels file");
            }
            int label = newLabel[original];
            int limit = label < 0 ? 0 : builder.classLimits != null ? builder.classLimits[label] : builder.limitPerClass;
            if (label < 0 || (limit > 0 && taken[label] >= limit)) {
                continue;
            }
            taken[label]++;
            list.add(new IdxSample(i, label));
        }
        for (int i = 0; i < classIds.length; i++) {
            if (taken[i] == 0) {
                throw new DataException(
                        data.labelsFile(),
                        "has no images of class " + classIds[i] + " (" + names.get(i)
                                + "); leave the class out of the subset or use a file that has it");
            }
        }
        this.samples = Collections.unmodifiableList(list);
        this.fingerprint = fingerprint(builder, classIds);
    }

    /** A builder; {@code setImages} and {@code setClassNames} are required. */
    public static Builder builder() {
        return new Builder();
    }

    @Override
    public List<String> classNames() {
        return classNames;
    }

    @Override
    public List<Sample> samples() {
        return samples;
    }

    /** SHA-256 over the two files' SHA-256, the class names, the class subset and the per-class limit. */
    @Override
    public String fingerprint() {
        return fingerprint;
    }

    /** The position in the IDX file of sample {@code sampleIndex}. */
    public int fileIndex(int sampleIndex) {
        return ((IdxSample) samples.get(sampleIndex)).index;
    }

    /** The IDX data this dataset draws from. */
    public IdxImages images() {
        return data;
    }

    private String fingerprint(Builder builder, int[] classIds) {
        StringBuilder text = new StringBuilder("idx-dataset-v1\n");
        text.append("images=").append(data.imagesSha256()).append('\n');
        text.append("labels=").append(data.labelsSha256()).append('\n');
        text.append("classes=").append(Arrays.toString(classIds)).append('\n');
        text.append("names=").append(String.join("\u0000", classNames)).append('\n');
        text.append("limitPerClass=").append(builder.limitPerClass).append('\n');
        if (builder.classLimits != null) {
            text.append("classLimits=").append(Arrays.toString(builder.classLimits)).append('\n');
        }
        try {
            MessageDigest sha = MessageDigest.getInstance("SHA-256");
            return HexFormat.of().formatHex(sha.digest(text.toString().getBytes(StandardCharsets.UTF_8)));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("every Java runtime has SHA-256", e);
        }
    }

    private final class IdxSample implements Sample {
        private final int index;
        private final int label;

        IdxSample(int index, int label) {
            this.index = index;
            this.label = label;
        }

        @Override
        public int label() {
            return label;
        }

        @Override
        public String source() {
            return data.imagesFile() + "#" + index;
        }

        @Override
        public RgbImage decode() {
            return RgbImage.fromGray(data.cols(), data.rows(), data.image(index));
        }

        @Override
        public String toString() {
            return source() + " (label " + label + ")";
        }
    }

    /** Builds an {@link IdxImageDataset}; DJL-style {@code setX} for required and {@code optX} for optional values. */
    public static final class Builder {
        private IdxImages images;
        private List<String> classNames;
        private int[] classIds;
        private int limitPerClass;
        private int[] classLimits;

        private Builder() {}

        /** The IDX images and labels (required). */
        public Builder images(IdxImages images) {
            this.images = images;
            return this;
        }

        /** The name of every label in the file, indexed by label (required). */
        public Builder classNames(List<String> classNames) {
            this.classNames = List.copyOf(classNames);
            return this;
        }

        /**
         * Keeps only these labels of the file, renumbered 0..k-1 in the order given. Default: all named labels, in
         * order.
         */
        public Builder classes(int... classIds) {
            this.classIds = classIds.clone();
            return this;
        }

        /** Keeps at most the first {@code limit} images of each class, in file order; 0 (the default) keeps all. */
        public Builder limitPerClass(int limit) {
            this.limitPerClass = limit;
            return this;
        }

        /**
         * Keeps at most the first {@code limits[i]} images of kept class {@code i} (in the order of {@link #classes}),
         * for an imbalanced subset; overrides {@link #limitPerClass}.
         */
        public Builder limitsPerClass(int... limits) {
            this.classLimits = limits.clone();
            return this;
        }

        /**
         * Builds the dataset.
         *
         * @throws FinetuneException of kind CONFIG for an invalid class subset or limit, of kind DATA if the file has
         *     labels without a name
         */
        public IdxImageDataset build() {
            if (images == null || classNames == null) {
                throw new IllegalStateException("setImages and setClassNames are required");
            }
            if (classNames.isEmpty() || classNames.size() > 256) {
                throw new ConfigException("", "class names: an IDX label file has 1..256 labels, found " + classNames.size() + " names");
            }
            if (classIds == null) {
                classIds = new int[classNames.size()];
                Arrays.setAll(classIds, i -> i);
            }
            if (classIds.length == 0) {
                throw new ConfigException("", "classes: the class subset is empty; give at least one");
            }
            boolean[] seen = new boolean[classNames.size()];
            for (int id : classIds) {
                if (id < 0 || id >= classNames.size()) {
                    throw new ConfigException("", "classes: class id " + id + " is out of range 0.." + (classNames.size() - 1));
                }
                if (seen[id]) {
                    throw new ConfigException("", "classes: class id " + id + " is listed twice; list each once");
                }
                seen[id] = true;
            }
            if (classLimits != null && classLimits.length != classIds.length) {
                throw new ConfigException("", "train_class_limits: " + classLimits.length + " limits for "
                        + classIds.length + " classes; give one per class");
            }
            if (limitPerClass < 0) {
                throw new ConfigException("", "limit per class must be >= 0 (0 = no limit), found " + limitPerClass);
            }
            return new IdxImageDataset(this);
        }
    }
}
