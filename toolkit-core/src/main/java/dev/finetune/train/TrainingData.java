package dev.finetune.train;

import ai.djl.ndarray.NDManager;
import dev.finetune.config.ConfigException;
import dev.finetune.config.ConfigLoader;
import dev.finetune.config.DataConfig;
import dev.finetune.data.BadImagePolicy;
import dev.finetune.data.BatchLoader;
import dev.finetune.data.FashionMnist;
import dev.finetune.data.IdxImageDataset;
import dev.finetune.data.IdxImages;
import dev.finetune.data.ImageDataset;
import dev.finetune.data.ImageFolderDataset;
import dev.finetune.data.ImageFolderIndex;
import dev.finetune.data.SkippedImages;
import dev.finetune.data.TransformSpec;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The data a config names: a training set, a validation set, and how batches of each are built.
 *
 * @param train training samples
 * @param val validation samples (may be empty)
 * @param transforms preprocessing
 * @param augment random resized crop and flip in training
 * @param workers decoding threads
 * @param onBadImage fail or skip
 * @param skipped the files skipped so far (shared by all loaders of the run)
 * @param description where the data came from, for the run summary
 */
public record TrainingData(
        ImageDataset train,
        ImageDataset val,
        TransformSpec transforms,
        boolean augment,
        int workers,
        BadImagePolicy onBadImage,
        SkippedImages skipped,
        String description) {

    /** Opens the data of {@code data:}; paths resolve against the config's folder. */
    public static TrainingData open(ConfigLoader.Loaded loaded, int seed) {
        DataConfig d = loaded.config().data();
        if (d == null) {
            throw new ConfigException("data", "required for training and evaluation (format, root or idx)");
        }
        float[] mean = toFloats(d.mean());
        float[] std = toFloats(d.std());
        TransformSpec spec = new TransformSpec(d.imageSize(), d.resize(), d.augment(), d.augment(), mean, std);
        int workers = d.workers() > 0 ? d.workers() : Math.max(1, Runtime.getRuntime().availableProcessors());
        BadImagePolicy bad = "skip".equals(d.onBadImage()) ? BadImagePolicy.SKIP : BadImagePolicy.FAIL;
        ImageDataset train;
        ImageDataset val;
        String description;
        if ("idx".equals(d.format())) {
            DataConfig.IdxConfig idx = d.idx();
            Path dir = loaded.resolve(idx.dir());
            List<String> names = FashionMnist.CLASS_NAMES;
            train = idxDataset(FashionMnist.readTrain(dir), idx, names, idx.trainPerClass());
            val = idxDataset(FashionMnist.readTest(dir), idx, names, idx.valPerClass());
            description = "idx " + dir + " classes " + (idx.classes() == null ? "all" : idx.classes());
        } else {
            Path root = loaded.resolve(d.root());
            ImageFolderIndex.Split split = ImageFolderIndex.open(root, d.valSplit() == null ? 0 : d.valSplit(), seed);
            train = new ImageFolderDataset(split.train());
            val = split.val().map(ImageFolderDataset::new).orElse(null);
            description = split.description();
        }
        return new TrainingData(train, val, spec, d.augment(), workers, bad, new SkippedImages(), description);
    }

    private static IdxImageDataset idxDataset(IdxImages images, DataConfig.IdxConfig idx, List<String> allNames,
            Integer perClass) {
        IdxImageDataset.Builder b = IdxImageDataset.builder().setImages(images);
        if (idx.classes() != null) {
            b.optClasses(idx.classes().stream().mapToInt(Integer::intValue).toArray());
        }
        List<String> names = new ArrayList<>(allNames);
        if (idx.classNames() != null) {
            // Names given for the kept classes, in the order of data.idx.classes (or of all labels).
            List<Integer> ids = idx.classes() != null ? idx.classes()
                    : java.util.stream.IntStream.range(0, idx.classNames().size()).boxed().toList();
            while (names.size() < ids.stream().mapToInt(Integer::intValue).max().orElse(0) + 1) {
                names.add(Integer.toString(names.size()));
            }
            for (int i = 0; i < ids.size(); i++) {
                names.set(ids.get(i), idx.classNames().get(i));
            }
        }
        b.setClassNames(names);
        if (perClass != null) {
            b.optLimitPerClass(perClass);
        }
        return b.build();
    }

    private static float[] toFloats(List<Double> v) {
        float[] out = new float[v.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = v.get(i).floatValue();
        }
        return out;
    }

    public List<String> classNames() {
        return train.classNames();
    }

    public int numClasses() {
        return train.classNames().size();
    }

    /** Options for a training epoch's loader. */
    public BatchLoader.Options trainOptions(int batchSize, long seed) {
        return BatchLoader.Options.builder().setBatchSize(batchSize).optShuffle(true).optSeed(seed)
                .optAugment(augment).optTransforms(transforms).optNumWorkers(workers)
                .optPrefetchBatches(Math.max(2, workers * 2)).optOnBadImage(onBadImage).optSkipped(skipped).build();
    }

    /** Options for evaluation: no shuffle, no augmentation. */
    public BatchLoader.Options evalOptions(int batchSize) {
        return BatchLoader.Options.builder().setBatchSize(batchSize).optShuffle(false).optAugment(false)
                .optTransforms(transforms).optNumWorkers(workers).optPrefetchBatches(Math.max(2, workers * 2))
                .optOnBadImage(onBadImage).optSkipped(skipped).build();
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
