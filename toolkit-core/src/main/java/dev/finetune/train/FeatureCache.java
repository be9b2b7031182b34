package dev.finetune.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import dev.finetune.data.BatchLoader;
import dev.finetune.data.LoadedBatch;
import dev.finetune.model.ResNet;

/**
 * Outputs of a deterministic frozen prefix (stages before the backward frontier, every BN there in frozen-stats
 * mode, no random augmentation), computed once and reused every epoch: the prefix is a fixed function of the image,
 * so running it again each epoch would recompute identical values.
 *
 * <p>Held in memory; the build is refused when it would exceed the byte budget (the trainer then runs uncached).
 * The key (prefix weights hash, preprocessing, data fingerprint) is recorded so a report can say what was cached.
 */
public final class FeatureCache implements AutoCloseable {
    private final NDManager manager;
    private final NDArray features;
    private final NDArray labels;
    /** Instead of {@link #features} / {@link #labels}: rows in a memory-mapped file (a store larger than memory). */
    private final MappedRows mapped;
    private final int stage;
    private final String key;

    /** Data set index → row of {@link #features}; -1 for an image the loader skipped (on_bad_image: skip). */
    private final int[] rowOf;

    private FeatureCache(NDManager manager, NDArray features, NDArray labels, int stage, String key, int[] rowOf) {
        this(manager, features, labels, null, stage, key, rowOf);
    }

    private FeatureCache(NDManager manager, NDArray features, NDArray labels, MappedRows mapped, int stage, String key,
            int[] rowOf) {
        this.manager = manager;
        this.features = features;
        this.labels = labels;
        this.mapped = mapped;
        this.stage = stage;
        this.key = key;
        this.rowOf = rowOf;
    }

    /**
     * A cache over arrays built elsewhere: {@code features} (N, …) and int64 {@code labels} (N) in row order,
     * {@code rowOf} mapping each data set index to its row or -1; owns {@code manager}.
     */
    public static FeatureCache of(NDManager manager, NDArray features, NDArray labels, int stage, String key,
            int[] rowOf) {
        return new FeatureCache(manager, features, labels, stage, key, rowOf.clone());
    }

    /**
     * A cache whose rows stay in a file of little-endian float32 rows ({@code rowShape} each, in row order), memory
     * mapped: the operating system pages them in and out, so neither the Java heap nor native memory holds the set —
     * a store larger than memory trains. Batches equal those of an in-memory cache of the same values bit for bit.
     * {@code onClose} runs when the cache closes (deleting the file).
     */
    public static FeatureCache mapped(NDManager manager, java.nio.file.Path file, ai.djl.ndarray.types.Shape rowShape,
            long[] labels, int stage, String key, int[] rowOf, Runnable onClose) {
        return new FeatureCache(manager, null, null, new MappedRows(file, rowShape, labels, onClose), stage, key,
                rowOf.clone());
    }

    /**
     * Float rows in a mapped file, in segments of whole rows under 2 GiB each (a mapping's limit); labels in memory.
     * Written by hand: Java maps at most 2 GiB per buffer, and no library in reach maps float rows for gathering.
     */
    private static final class MappedRows {
        private final ai.djl.ndarray.types.Shape rowShape;
        private final int per;
        private final long[] labels;
        private final int rowsPerSegment;
        private final java.nio.FloatBuffer[] segments;
        private final Runnable onClose;

        MappedRows(java.nio.file.Path file, ai.djl.ndarray.types.Shape rowShape, long[] labels, Runnable onClose) {
            this.rowShape = rowShape;
            this.per = Math.toIntExact(rowShape.size());
            this.labels = labels;
            this.onClose = onClose;
            this.rowsPerSegment = Math.max(1, Integer.MAX_VALUE / 4 / per);
            int n = labels.length;
            int count = Math.max(1, (n + rowsPerSegment - 1) / rowsPerSegment);
            segments = new java.nio.FloatBuffer[count];
            try (java.nio.channels.FileChannel ch = java.nio.channels.FileChannel.open(file,
                    java.nio.file.StandardOpenOption.READ)) {
                for (int i = 0; i < count; i++) {
                    long first = (long) i * rowsPerSegment;
                    long rows = Math.min(rowsPerSegment, n - first);
                    segments[i] = ch.map(java.nio.channels.FileChannel.MapMode.READ_ONLY, first * per * 4,
                            Math.max(0, rows) * per * 4).order(java.nio.ByteOrder.LITTLE_ENDIAN).asFloatBuffer();
                }
            } catch (java.io.IOException e) {
                throw new dev.finetune.FinetuneException(dev.finetune.ErrorKind.DATA, "cannot map " + file + ": "
                        + e.getMessage(), e);
            }
        }

        NDArray[] gather(long[] rows, NDManager m) {
            float[] out = new float[rows.length * per];
            long[] y = new long[rows.length];
            for (int i = 0; i < rows.length; i++) {
                int seg = (int) (rows[i] / rowsPerSegment);
                int at = (int) (rows[i] % rowsPerSegment) * per;
                segments[seg].get(at, out, i * per, per);
                y[i] = labels[(int) rows[i]];
            }
            long[] dims = new long[rowShape.dimension() + 1];
            dims[0] = rows.length;
            for (int i = 0; i < rowShape.dimension(); i++) {
                dims[i + 1] = rowShape.get(i);
            }
            return new NDArray[] {dev.finetune.engine.NativeCopies.floats(m, out, new ai.djl.ndarray.types.Shape(dims)),
                m.create(y)};
        }
    }

    /** The stage index at which cached features enter the network. */
    public int stage() {
        return stage;
    }

    public String key() {
        return key;
    }

    /** Bytes held. */
    public long bytes() {
        return mapped != null ? (long) mapped.labels.length * mapped.per * 4 : features.size() * 4;
    }

    /**
     * Runs every training image once through stages {@code [0, stage)} and keeps the outputs, in dataset order. Returns
     * null when they would take more than {@code maxBytes}.
     */
    public static FeatureCache build(FineTuner ft, TrainingData data, int stage, int batchSize, long maxBytes,
            String key) {
        return build(ft, data, data.train(), stage, batchSize, maxBytes, key);
    }

    /** The same for any data set of the run (the validation set is cached too: its prefix outputs are as fixed). */
    public static FeatureCache build(FineTuner ft, TrainingData data, dev.finetune.data.ImageDataset dataset,
            int stage, int batchSize, long maxBytes, String key) {
        long perImage = ft.model().stageInputElements(stage, data.transforms().imageSize());
        if (perImage * 4L * dataset.size() > maxBytes) {
            return null;
        }
        NDManager m = ft.manager().newSubManager();
        try {
            // One tensor for every row, filled batch by batch: a single block, not a chunk per batch. Chunks kept
            // between each batch's freed activations pinned the allocator's 64 MB thread heaps: a linear probe's
            // build at 32×32 grew native memory by 200–580 MB for 72 MB of features, then needed as much again for
            // the final concat.
            NDArray[] all = {null};
            long[] labelRows = new long[dataset.size()];
            int[] rowOf = new int[dataset.size()];
            java.util.Arrays.fill(rowOf, -1);
            int[] next = {0};
            forEachPrefixBatch(ft, data, dataset, stage, batchSize, m, (f, b) -> {
                int from = next[0];
                int[] indices = b.sampleIndices();
                if (all[0] == null) { // uninitialised: every row kept is written, the others cut off below
                    all[0] = m.create(new Shape(dataset.size()).addAll(f.getShape().slice(1)), f.getDataType());
                }
                all[0].set(new NDIndex("{}:{}", from, from + indices.length), f);
                long[] y = b.labels().toLongArray();
                for (int i = 0; i < indices.length; i++) {
                    rowOf[indices[i]] = from + i;
                    labelRows[from + i] = y[i];
                }
                next[0] = from + indices.length;
            });
            if (all[0] == null) {
                throw new IllegalStateException("no image of the data set could be read for the feature cache");
            }
            NDArray features = all[0];
            if (next[0] < dataset.size()) { // images the loader skipped: the rows they would have had go
                features = all[0].get(new NDIndex("0:{}", next[0])).duplicate();
                all[0].close();
            }
            NDArray labels = m.create(java.util.Arrays.copyOf(labelRows, next[0]));
            return new FeatureCache(m, features, labels, stage, key, rowOf);
        } catch (RuntimeException e) {
            m.close();
            throw e;
        }
    }

    /**
     * Input pixels per batch (N·H·W) up to which {@link #forEachPrefixBatch} raises its batch above the run's: 512
     * images at 32×32, 128 at 64×64, the run's own batch at 224. No autograd runs there and every BN is in eval
     * mode, so the batch changes only how much work each native call gets. Small images leave the convolutions of the
     * later stages (4×4 and 2×2 maps at 32×32) with too little work per call: folded inference of ResNet-18 at 32×32
     * ran 2,241 img/s at batch 64, 2,580 at 128, 2,904 at 256, 3,242 at 512 and 3,189 at 1,024 (peak RSS 333 against
     * 411 MB at 512); at 64×64 695, 725 and 747 img/s at 64, 128 and 256 (docs/performance.md, 2026-12-06 tenth
     * session). This pass is most of a linear probe's wall time.
     */
    static final long EXTRACTION_PIXELS = 1L << 19;

    /** The most images the prefix pass raises its batch to: past 512 nothing more was gained at 32×32. */
    static final int MAX_EXTRACTION_BATCH = 512;

    /**
     * The batch the prefix pass uses: the run's, or more images up to {@link #EXTRACTION_PIXELS} (at most
     * {@link #MAX_EXTRACTION_BATCH}) when they are small. Public for a distributed prefix pass, whose features
     * equal the store's bit for bit only when its batches are these.
     */
    public static int extractionBatch(int batchSize, int imageSize) {
        long fits = Math.min(EXTRACTION_PIXELS / ((long) imageSize * imageSize), MAX_EXTRACTION_BATCH);
        return (int) Math.max(batchSize, fits);
    }

    /** What {@link #forEachPrefixBatch} hands over: a batch's prefix output and the batch it came from. */
    @FunctionalInterface
    public interface PrefixBatchSink {
        void accept(NDArray features, LoadedBatch batch) throws java.io.IOException;
    }

    /**
     * Runs stages {@code [0, stage)} over every image of {@code dataset} in data set order with the run's evaluation
     * preprocessing and no autograd ({@link FineTuner#prefixFeatures}: folded and guarded where the plan allows),
     * handing each batch to {@code sink}; the features belong to the batch unless the sink attaches them elsewhere.
     * The one loop behind the in-memory cache and the on-disk store, so that both hold the same values. A pending
     * {@link StopSignal} ends it between batches with its {@code FinetuneException} (exit 130 / 143).
     */
    public static void forEachPrefixBatch(FineTuner ft, TrainingData data, dev.finetune.data.ImageDataset dataset,
            int stage, int batchSize, NDManager m, PrefixBatchSink sink) {
        int extraction = extractionBatch(batchSize, data.transforms().imageSize());
        try (BatchLoader loader = new BatchLoader(dataset, m, data.evalOptions(extraction), 0)) {
            while (loader.hasNext()) {
                // Ctrl-C / SIGTERM end the pass between batches (a large set's pass takes minutes); the trainer
                // turns this into its resumable stop at the epoch's start.
                StopSignal.throwIfRequested("feature extraction");
                try (LoadedBatch b = loader.next()) {
                    NDArray f = ft.prefixFeatures(b.images(), stage);
                    f.attach(b.manager());
                    sink.accept(f, b);
                }
            }
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    /** Number of cached samples. */
    public int size() {
        return mapped != null ? mapped.labels.length : (int) labels.size();
    }

    /**
     * One batch of cached inputs and labels, as the loader would have ordered them (the indices come from
     * {@link BatchLoader#plan}); images the loader skipped are left out, as the loader leaves them out. The arrays
     * belong to {@code batchManager}; null when every image of the batch was skipped.
     */
    public NDArray[] batch(int[] indices, NDManager batchManager) {
        long[] idx = java.util.Arrays.stream(indices).filter(i -> rowOf[i] >= 0).mapToLong(i -> rowOf[i]).toArray();
        if (idx.length == 0) {
            return null; // every image of this batch was skipped, as the loader would have skipped the batch
        }
        if (mapped != null) {
            return mapped.gather(idx, batchManager);
        }
        NDArray index = batchManager.create(idx);
        NDArray x = features.get(new NDIndex("{}", index));
        NDArray y = labels.get(new NDIndex("{}", index));
        x.attach(batchManager);
        y.attach(batchManager);
        return new NDArray[] {x, y};
    }

    /** Rows {@code [from, from + count)} of the cache, in cache order (every image kept), on {@code batchManager}. */
    public NDArray[] rows(int from, int count, NDManager batchManager) {
        if (mapped != null) {
            return mapped.gather(java.util.stream.LongStream.range(from, from + count).toArray(), batchManager);
        }
        NDArray x = features.get(new NDIndex(from + ":" + (from + count)));
        NDArray y = labels.get(new NDIndex(from + ":" + (from + count)));
        x.attach(batchManager);
        y.attach(batchManager);
        return new NDArray[] {x, y};
    }

    @Override
    public void close() {
        manager.close();
        if (mapped != null && mapped.onClose != null) {
            mapped.onClose.run();
        }
    }
}
