package dev.finetune.data;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;

/**
 * One batch produced by {@link BatchLoader}: images {@code (N, 3, H, W)} float32, normalised; labels {@code (N)}
 * int64; and the dataset indices of the samples, in the same order. The arrays live on a manager of their own that
 * {@link #close()} frees, so closing every batch (try-with-resources) keeps native memory flat over an epoch.
 *
 * <p>{@code N} can be smaller than the batch size for the last batch (unless dropped) and when images were skipped
 * under {@link BadImagePolicy#SKIP}.
 */
public final class LoadedBatch implements AutoCloseable {
    private final int batchIndex;
    private final NDManager manager;
    private final NDArray images;
    private final NDArray labels;
    private final int[] sampleIndices;

    LoadedBatch(int batchIndex, NDManager manager, NDArray images, NDArray labels, int[] sampleIndices) {
        this.batchIndex = batchIndex;
        this.manager = manager;
        this.images = images;
        this.labels = labels;
        this.sampleIndices = sampleIndices;
    }

    /** Position of this batch in the epoch, from 0. */
    public int batchIndex() {
        return batchIndex;
    }

    /** {@code (N, 3, H, W)} float32. */
    public NDArray images() {
        return images;
    }

    /** {@code (N)} int64 label indices. */
    public NDArray labels() {
        return labels;
    }

    /** The dataset sample index of each row (a copy). */
    public int[] sampleIndices() {
        return sampleIndices.clone();
    }

    /** Number of samples, {@code N}. */
    public int size() {
        return sampleIndices.length;
    }

    /** The manager holding this batch's arrays; arrays attached to it are freed with the batch. */
    public NDManager manager() {
        return manager;
    }

    /** Frees the batch's native memory. */
    @Override
    public void close() {
        manager.close();
    }
}
