package dev.finetune.train;

import ai.djl.ndarray.NDManager;
import dev.finetune.data.BadImagePolicy;
import dev.finetune.data.BatchLoader;
import dev.finetune.data.ImageDataset;
import dev.finetune.data.SkippedImages;
import dev.finetune.data.TransformSpec;
import java.util.ArrayList;
import java.util.List;

/**
 * The data of a run: a training set, a validation set, and how batches of each are built.
 *
 * @param train training samples
 * @param val validation samples (may be empty)
 * @param transforms preprocessing
 * @param augment random resized crop and flip in training
 * @param workers decoding threads
 * @param onBadImage fail or skip
 * @param skipped the files skipped so far (shared by all loaders of the run)
 * @param description where the data came from, for the run summary
 * @param balanced sample each training epoch class-balanced: as many draws as samples, with replacement, each sample
 *     weighted by 1 / (its class's count), as PyTorch's {@code WeightedRandomSampler} is usually set up
 */
public record TrainingData(
        ImageDataset train,
        ImageDataset val,
        TransformSpec transforms,
        boolean augment,
        int workers,
        BadImagePolicy onBadImage,
        SkippedImages skipped,
        String description,
        boolean balanced) {

    /** A new record of what was skipped so far is shared by every loader of the run. */
    public TrainingData {
        java.util.Objects.requireNonNull(train, "train");
        java.util.Objects.requireNonNull(transforms, "transforms");
        skipped = skipped == null ? new SkippedImages() : skipped;
    }

    /**
     * An image folder as a run sees it ({@code root/train/<class>/…} and {@code root/val/<class>/…}, or class folders
     * with {@code valSplit} of each class held out), decoded by one thread per core, failing on a bad image.
     *
     * @param transforms the preprocessing; its {@code randomResizedCrop} says whether training augments
     * @param valSplit the fraction held out when there is no val/ folder (0: none)
     * @param seed the seed of that hold-out
     */
    public static TrainingData imageFolder(java.nio.file.Path root, TransformSpec transforms, double valSplit,
            int seed) {
        dev.finetune.data.ImageFolderIndex.Split split = dev.finetune.data.ImageFolderIndex.open(root, valSplit, seed);
        return new TrainingData(new dev.finetune.data.ImageFolderDataset(split.train()),
                split.val().map(dev.finetune.data.ImageFolderDataset::new).orElse(null), transforms,
                transforms.randomResizedCrop(), Math.max(1, Runtime.getRuntime().availableProcessors()),
                BadImagePolicy.FAIL, new SkippedImages(), split.description(), false);
    }

    public List<String> classNames() {
        return train.classNames();
    }

    public int numClasses() {
        return train.classNames().size();
    }

    /** Options for a training epoch's loader. */
    public BatchLoader.Options trainOptions(int batchSize, long seed) {
        return BatchLoader.Options.builder().batchSize(batchSize).shuffle(true).seed(seed)
                .augment(augment).transforms(transforms).numWorkers(workers)
                .prefetchBatches(Math.max(2, workers * 2)).onBadImage(onBadImage).skipped(skipped)
                .sampleWeights(balanced ? balancedWeights(train) : null).build();
    }

    /** 1 / (the sample's class count) for every training sample. */
    static double[] balancedWeights(ImageDataset data) {
        int[] counts = data.classCounts();
        List<ImageDataset.Sample> samples = data.samples();
        double[] w = new double[samples.size()];
        for (int i = 0; i < w.length; i++) {
            w[i] = 1.0 / counts[samples.get(i).label()];
        }
        return w;
    }

    /** Options for evaluation: no shuffle, no augmentation. */
    public BatchLoader.Options evalOptions(int batchSize) {
        return BatchLoader.Options.builder().batchSize(batchSize).shuffle(false).augment(false)
                .transforms(transforms).numWorkers(workers).prefetchBatches(Math.max(2, workers * 2))
                .onBadImage(onBadImage).skipped(skipped).build();
    }

    /** A loader over the training set for one epoch (0-based), shuffled by (seed, epoch). */
    public BatchLoader trainLoader(NDManager manager, int batchSize, long seed, int epoch) {
        return new BatchLoader(train, manager, trainOptions(batchSize, seed), epoch);
    }

    /** A loader over the validation set, or null if there is none. */
    public BatchLoader valLoader(NDManager manager, int batchSize) {
        return val == null || val.size() == 0 ? null : new BatchLoader(val, manager, evalOptions(batchSize), 0);
    }

    /** The fingerprint of train and validation data. */
    public String fingerprint() {
        List<String> parts = new ArrayList<>();
        parts.add(train.fingerprint());
        if (val != null) {
            parts.add(val.fingerprint());
        }
        return String.join("+", parts);
    }
}
