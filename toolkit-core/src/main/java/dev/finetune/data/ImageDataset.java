package dev.finetune.data;

import java.util.List;

/**
 * A labelled image classification dataset: an ordered list of samples, each a label index and a way to decode its
 * image, plus the class names the label indices refer to. Implementations hold only what is needed to find the
 * images (file paths, or the bytes of an IDX file); decoding happens on demand, usually on a
 * {@link BatchLoader} worker thread, so {@link Sample#decode()} must be safe to call concurrently.
 */
public interface ImageDataset {
    /** Class names; label {@code i} of every sample means {@code classNames().get(i)}. */
    List<String> classNames();

    /** The samples in a fixed order; indices into this list are the sample indices used everywhere else. */
    List<Sample> samples();

    /**
     * A SHA-256 hex string that changes when the data changes, for run metadata and cache keys. Cheap to compute: for
     * folders it covers relative paths, sizes and modification times, not image bytes.
     */
    String fingerprint();

    /** Number of samples. */
    default int size() {
        return samples().size();
    }

    /** Number of samples per label, indexed by label. */
    default int[] classCounts() {
        int[] counts = new int[classNames().size()];
        for (Sample sample : samples()) {
            counts[sample.label()]++;
        }
        return counts;
    }

    /** One labelled image. */
    interface Sample {
        /** The label index, {@code 0 <= label < classNames().size()}. */
        int label();

        /** Where the image comes from, for messages: a file path, or {@code file#index} inside an IDX file. */
        String source();

        /**
         * Decodes the image to what torchvision would get from {@code PIL.Image.open(f).convert("RGB")}: colour,
         * grayscale, palette and images with alpha all come back as RGB (alpha dropped, as PIL does).
         *
         * @throws DataException naming {@link #source()} if the image cannot be read or decoded
         */
        RgbImage decode();
    }
}
