package dev.finetune.data;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.jni.JniUtils;
import dev.finetune.ConfigException;
import dev.finetune.ErrorKind;
import dev.finetune.FinetuneException;
import dev.finetune.engine.NativeCopies;
import java.util.ArrayDeque;
import java.util.Arrays;
import java.util.Deque;
import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;
import java.util.SplittableRandom;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * One epoch over an {@link ImageDataset}, as {@link LoadedBatch}es built ahead of time on worker threads.
 *
 * <p>The batch plan (which samples form batch {@code b}) is fixed at construction from the seed and epoch, and
 * everything random about a sample is seeded by {@code (seed, epoch, sampleIndex)}; each worker builds whole batches,
 * and the consumer takes them in plan order. So the batches are identical whatever the number of workers and
 * however threads are scheduled. Up to {@link Options#prefetchBatches()} batches are being built or waiting at any
 * time, so the training step rarely waits on data.
 *
 * <pre>{@code
 * try (BatchLoader loader = new BatchLoader(dataset, manager, options, epoch)) {
 *     while (loader.hasNext()) {
 *         try (LoadedBatch batch = loader.next()) {
 *             ... batch.images(), batch.labels() ...
 *         }
 *     }
 * }
 * }</pre>
 *
 * <p>A failure on a worker (for example a {@link DataException} for a corrupt image under
 * {@link BadImagePolicy#FAIL}) is rethrown as-is from {@link #hasNext()} or {@link #next()}, and the loader stops.
 * Not thread-safe: one consumer thread.
 */
public final class BatchLoader implements Iterator<LoadedBatch>, AutoCloseable {
    private static final AtomicInteger LOADER_IDS = new AtomicInteger();

    private final ImageDataset dataset;
    private final NDManager parent;
    private final Options options;
    private final int epoch;
    private final int[][] plan;
    private final ExecutorService pool;
    /** Batch-sized pixel arrays the workers reuse. */
    private final java.util.concurrent.ConcurrentLinkedQueue<float[]> pixelArrays =
            new java.util.concurrent.ConcurrentLinkedQueue<>();
    private final Deque<Future<Prepared>> inFlight = new ArrayDeque<>();
    private final AtomicBoolean closed = new AtomicBoolean();
    private int nextToSubmit;
    private int nextToTake;
    private LoadedBatch ready;

    /**
     * Plans the epoch and starts building the first batches.
     *
     * @param dataset the samples
     * @param parent each batch's arrays live on a new sub-manager of this one
     * @param options batch size, shuffling, augmentation, threads
     * @param epoch the epoch number (from 0); with the seed it decides the order and the augmentations
     */
    public BatchLoader(ImageDataset dataset, NDManager parent, Options options, int epoch) {
        this.dataset = dataset;
        this.parent = parent;
        this.options = options;
        this.epoch = epoch;
        this.plan = plan(dataset.size(), options, epoch);
        if (options.numWorkers() > 0) {
            this.pool = Executors.newFixedThreadPool(options.numWorkers(), workerThreads(parent));
            submitAhead();
        } else {
            this.pool = null;
        }
    }

    /** Number of batches this epoch will have (fewer only if every image of a batch is skipped). */
    public int numBatches() {
        return plan.length;
    }

    /** The options this loader was built with. */
    public Options options() {
        return options;
    }

    @Override
    public boolean hasNext() {
        while (ready == null && nextToTake < plan.length && !closed.get()) {
            ready = take();
        }
        return ready != null;
    }

    @Override
    public LoadedBatch next() {
        if (!hasNext()) {
            throw new NoSuchElementException("the epoch has no more batches");
        }
        LoadedBatch batch = ready;
        ready = null;
        return batch;
    }

    /**
     * Loads up to {@code batches} batches, closes them at once, and returns images per second: a measure of the data
     * pipeline alone, with no model. Timing starts when the first batch arrives, so thread start-up is excluded; ask
     * for many more batches than {@link Options#prefetchBatches()} so the figure reflects the steady state rather than
     * the batches prepared in advance.
     *
     * @param batches at least 2
     * @return images per second, or 0 if the epoch has fewer than 2 batches
     */
    public double measureThroughput(int batches) {
        if (batches < 2) {
            throw new IllegalArgumentException("need at least 2 batches to time, found " + batches);
        }
        long start = 0;
        long images = 0;
        int taken = 0;
        while (taken < batches && hasNext()) {
            try (LoadedBatch batch = next()) {
                if (taken == 0) {
                    start = System.nanoTime();
                } else {
                    images += batch.size();
                }
            }
            taken++;
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        return taken < 2 || seconds <= 0 ? 0 : images / seconds;
    }

    /** Stops the workers and frees every batch built but not handed out. Safe to call more than once. */
    @Override
    public void close() {
        if (closed.getAndSet(true)) {
            return;
        }
        if (ready != null) {
            ready.close();
            ready = null;
        }
        if (pool != null) {
            pool.shutdownNow();
            boolean interrupted = false;
            try {
                // Workers notice `closed` between samples; their batches hold no native memory yet.
                while (!pool.awaitTermination(10, TimeUnit.SECONDS)) {
                    // keep waiting: no worker outlives the loader (the caller may close the dataset next)
                }
            } catch (InterruptedException e) {
                interrupted = true;
            }
            for (Future<Prepared> future : inFlight) {
                releaseQuietly(future);
            }
            if (interrupted) {
                Thread.currentThread().interrupt();
            }
        }
        inFlight.clear();
    }

    private LoadedBatch take() {
        int index = nextToTake++;
        if (pool == null) {
            return toBatch(build(index));
        }
        Future<Prepared> future = inFlight.pollFirst();
        submitAhead();
        try {
            return toBatch(future.get());
        } catch (ExecutionException e) {
            close();
            Throwable cause = e.getCause();
            if (cause instanceof RuntimeException runtime) {
                throw runtime; // the worker's own exception, e.g. a DataException naming the file
            }
            if (cause instanceof Error error) {
                throw error;
            }
            throw new FinetuneException(ErrorKind.INTERNAL, "data loader worker failed: " + cause, cause);
        } catch (InterruptedException e) {
            close();
            Thread.currentThread().interrupt();
            throw new FinetuneException(ErrorKind.INTERRUPTED, "interrupted while waiting for a batch", e);
        }
    }

    private void submitAhead() {
        int window = Math.max(options.prefetchBatches(), options.numWorkers());
        while (inFlight.size() < window && nextToSubmit < plan.length) {
            int index = nextToSubmit++;
            inFlight.addLast(pool.submit(() -> build(index)));
        }
    }

    /**
     * A batch preprocessed in Java, not yet in native memory: a worker's result. The consumer thread copies it into
     * a tensor ({@link #toBatch}), so every batch's native memory comes from that thread's malloc arena. Made on the
     * workers, each batch (19 MB at 128x112x112) came from the arena of the worker that built it and went back there
     * when the step freed it: a training run's workers, new threads every epoch and every validation, filled up to
     * glibc's 16 arenas (8 per core) of ~60 MB each, ~1 GB more than the step itself (docs/performance.md, 2026-12-05
     * eighth session). The workers still move the pixels into a staging buffer; the consumer's part is libtorch's
     * copy of it.
     */
    private record Prepared(int batchIndex, java.nio.ByteBuffer staged, long[] labels, int[] kept, int n) {}

    /** Builds batch {@code batchIndex}'s pixels, or returns null if every one of its images was skipped. */
    private Prepared build(int batchIndex) {
        int[] indices = plan[batchIndex];
        List<ImageDataset.Sample> samples = dataset.samples();
        TransformSpec transforms = options.transforms();
        int length = transforms.tensorLength();
        // The whole batch is preprocessed in Java (torchvision's PIL arithmetic) and copied to native memory once,
        // from an array the loader's workers reuse (a batch's array is megabytes: one per batch made G1 grow its heap).
        float[] polled = pixelArrays.poll();
        float[] pixels = polled != null && polled.length >= indices.length * length ? polled
                : new float[indices.length * length];
        int[] kept = new int[indices.length];
        long[] labels = new long[indices.length];
        int n = 0;
        for (int sampleIndex : indices) {
            if (closed.get()) {
                throw new CancellationException("loader closed");
            }
            ImageDataset.Sample sample = samples.get(sampleIndex);
            RgbImage image;
            try {
                image = sample.decode();
            } catch (DataException e) {
                if (options.onBadImage() == BadImagePolicy.SKIP) {
                    options.skipped().record(sample.source(), e.getMessage());
                    continue;
                }
                throw e;
            }
            RgbImage input = options.augment()
                    ? transforms.trainImage(image, options.seed(), epoch, sampleIndex)
                    : transforms.evalImage(image);
            transforms.toTensor(input, pixels, n * length);
            kept[n] = sampleIndex;
            labels[n] = sample.label();
            n++;
        }
        if (n == 0) {
            pixelArrays.add(pixels);
            return null;
        }
        java.nio.ByteBuffer staged = NativeCopies.staged(pixels, n * length);
        pixelArrays.add(pixels);
        return new Prepared(batchIndex, staged, labels, kept, n);
    }

    /** {@code prepared} in native memory allocated by the calling (consumer) thread. */
    private LoadedBatch toBatch(Prepared prepared) {
        if (prepared == null) {
            return null;
        }
        int n = prepared.n();
        int size = options.transforms().imageSize();
        NDManager batchManager = parent.newSubManager();
        try {
            NDArray images = NativeCopies.tensor(batchManager, prepared.staged(), new Shape(n, 3, size, size));
            NDArray labelArray = batchManager.create(Arrays.copyOf(prepared.labels(), n));
            return new LoadedBatch(prepared.batchIndex(), batchManager, images, labelArray,
                    Arrays.copyOf(prepared.kept(), n));
        } catch (RuntimeException | Error e) {
            batchManager.close();
            throw e;
        }
    }

    /**
     * The sample indices of each batch of an epoch: shuffled by (seed, epoch) when asked. Public so a feature cache
     * can replay exactly the order a loader would use.
     */
    public static int[][] plan(int size, Options options, int epoch) {
        int[] order = new int[size];
        Arrays.setAll(order, i -> i);
        if (options.sampleWeights() != null) {
            order = weightedDraw(options.sampleWeights(), size,
                    new SplittableRandom(options.seed() * 0x9E3779B97F4A7C15L + epoch));
        } else if (options.shuffle()) {
            // Fisher-Yates with a generator of (seed, epoch) only: the order is reproducible and new every epoch.
            SplittableRandom random = new SplittableRandom(options.seed() * 0x9E3779B97F4A7C15L + epoch);
            for (int i = size - 1; i > 0; i--) {
                int j = random.nextInt(i + 1);
                int t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
        }
        int batchSize = options.batchSize();
        int count = options.dropLast() ? size / batchSize : (size + batchSize - 1) / batchSize;
        int[][] batches = new int[count][];
        for (int b = 0; b < count; b++) {
            batches[b] = Arrays.copyOfRange(order, b * batchSize, Math.min(size, (b + 1) * batchSize));
        }
        return batches;
    }

    /**
     * {@code n} indices drawn with replacement, index i with probability {@code weights[i] / Σ weights}: inverse
     * transform sampling over the cumulative weights (written out: the draws must come from the (seed, epoch)
     * generator so that a resumed run draws the same ones).
     */
    static int[] weightedDraw(double[] weights, int n, SplittableRandom random) {
        double[] cumulative = new double[weights.length];
        double total = 0;
        for (int i = 0; i < weights.length; i++) {
            total += weights[i];
            cumulative[i] = total;
        }
        if (!(total > 0)) {
            throw new IllegalArgumentException("sample weights sum to " + total + "; at least one must be > 0");
        }
        int[] out = new int[n];
        for (int k = 0; k < n; k++) {
            double u = random.nextDouble() * total;
            int i = Arrays.binarySearch(cumulative, u);
            i = i >= 0 ? i + 1 : -i - 1;
            while (i < weights.length - 1 && weights[i] == 0) {
                i++; // u landed exactly on a boundary before a zero-weight run
            }
            out[k] = Math.min(i, weights.length - 1);
        }
        return out;
    }

    private static ThreadFactory workerThreads(NDManager parent) {
        boolean pytorch = "PyTorch".equals(parent.getEngine().getEngineName());
        int loaderId = LOADER_IDS.incrementAndGet();
        AtomicInteger threadIds = new AtomicInteger();
        return task -> {
            Runnable body = () -> {
                if (pytorch) {
                    // libtorch grad mode is per thread and on by default; workers only make data, never a graph.
                    JniUtils.setGradMode(false);
                }
                task.run();
            };
            Thread thread = new Thread(body, "batch-loader-" + loaderId + "-" + threadIds.incrementAndGet());
            thread.setDaemon(true); // a loader the caller forgot to close must not keep the JVM alive
            return thread;
        };
    }

    /** Returns a finished batch's staging buffer to the pool; a failed or unfinished one has none. */
    private static void releaseQuietly(Future<Prepared> future) {
        if (!future.isDone() || future.isCancelled()) {
            return;
        }
        try {
            Prepared prepared = future.get();
            if (prepared != null) {
                NativeCopies.release(prepared.staged());
            }
        } catch (ExecutionException | InterruptedException | CancellationException e) {
            // nothing was staged
        }
    }

    /**
     * How a {@link BatchLoader} batches and preprocesses. Immutable; build with {@link #builder()} and derive variants
     * with {@link #toBuilder()}.
     *
     * @param batchSize samples per batch
     * @param shuffle reorder samples every epoch (seeded); off for evaluation
     * @param dropLast leave out the last batch if it is smaller than {@code batchSize}
     * @param seed seeds the order and the augmentations
     * @param augment use {@link TransformSpec#trainImage} (training) rather than {@link TransformSpec#evalImage}
     * @param transforms the preprocessing
     * @param numWorkers worker threads; 0 builds batches on the consumer thread, without prefetch
     * @param prefetchBatches batches being built or waiting, at least {@code numWorkers} are kept busy
     * @param onBadImage what to do with an image that cannot be decoded
     * @param skipped where skipped images are recorded; share one per run
     * @param sampleWeights per-sample weights for sampling with replacement (PyTorch's
     *     {@code WeightedRandomSampler(weights, len(weights), replacement=True)}, seeded by (seed, epoch)), or null for
     *     the shuffled (or ordered) pass over every sample
     */
    public record Options(
            int batchSize,
            boolean shuffle,
            boolean dropLast,
            long seed,
            boolean augment,
            TransformSpec transforms,
            int numWorkers,
            int prefetchBatches,
            BadImagePolicy onBadImage,
            SkippedImages skipped,
            double[] sampleWeights) {

        /** Checks the values. */
        public Options {
            if (sampleWeights != null) {
                for (double w : sampleWeights) {
                    if (!(w >= 0) || Double.isInfinite(w)) {
                        throw new IllegalArgumentException("sample weights must be finite and >= 0, found " + w);
                    }
                }
                sampleWeights = sampleWeights.clone();
            }
            if (batchSize < 1) {
                throw new ConfigException("", "batch size must be >= 1, found " + batchSize);
            }
            if (numWorkers < 0) {
                throw new ConfigException("", "loader workers must be >= 0, found " + numWorkers);
            }
            if (prefetchBatches < 1) {
                throw new ConfigException("", "prefetch batches must be >= 1, found " + prefetchBatches);
            }
            if (transforms == null || onBadImage == null || skipped == null) {
                throw new IllegalArgumentException("transforms, onBadImage and skipped are required");
            }
        }

        /** Defaults: no shuffle, keep last, seed 0, no augmentation, {@link TransformSpec#defaults()}, FAIL. */
        public static Builder builder() {
            return new Builder();
        }

        /** A builder starting from these options. */
        public Builder toBuilder() {
            return new Builder()
                    .batchSize(batchSize)
                    .shuffle(shuffle)
                    .dropLast(dropLast)
                    .seed(seed)
                    .augment(augment)
                    .transforms(transforms)
                    .numWorkers(numWorkers)
                    .prefetchBatches(prefetchBatches)
                    .onBadImage(onBadImage)
                    .skipped(skipped)
                    .sampleWeights(sampleWeights);
        }

        /** Builds {@link Options}; {@code setBatchSize} is required. */
        public static final class Builder {
            private int batchSize;
            private boolean shuffle;
            private boolean dropLast;
            private long seed;
            private boolean augment;
            private TransformSpec transforms = TransformSpec.defaults();
            private int numWorkers = Math.min(4, Runtime.getRuntime().availableProcessors());
            private Integer prefetchBatches;
            private BadImagePolicy onBadImage = BadImagePolicy.FAIL;
            private SkippedImages skipped;
            private double[] sampleWeights;

            private Builder() {}

            /** Weighted sampling with replacement (null, the default, for a pass over every sample). */
            public Builder sampleWeights(double[] weights) {
                this.sampleWeights = weights;
                return this;
            }

            public Builder batchSize(int batchSize) {
                this.batchSize = batchSize;
                return this;
            }

            public Builder shuffle(boolean shuffle) {
                this.shuffle = shuffle;
                return this;
            }

            public Builder dropLast(boolean dropLast) {
                this.dropLast = dropLast;
                return this;
            }

            public Builder seed(long seed) {
                this.seed = seed;
                return this;
            }

            public Builder augment(boolean augment) {
                this.augment = augment;
                return this;
            }

            public Builder transforms(TransformSpec transforms) {
                this.transforms = transforms;
                return this;
            }

            /** Default: min(4, available processors). */
            public Builder numWorkers(int numWorkers) {
                this.numWorkers = numWorkers;
                return this;
            }

            /** Default: twice the number of workers, at least 2. */
            public Builder prefetchBatches(int prefetchBatches) {
                this.prefetchBatches = prefetchBatches;
                return this;
            }

            public Builder onBadImage(BadImagePolicy onBadImage) {
                this.onBadImage = onBadImage;
                return this;
            }

            /** Default: a new, empty record. */
            public Builder skipped(SkippedImages skipped) {
                this.skipped = skipped;
                return this;
            }

            public Options build() {
                int prefetch = prefetchBatches != null ? prefetchBatches : Math.max(2, 2 * numWorkers);
                return new Options(
                        batchSize,
                        shuffle,
                        dropLast,
                        seed,
                        augment,
                        transforms,
                        numWorkers,
                        prefetch,
                        onBadImage,
                        skipped == null ? new SkippedImages() : skipped,
                        sampleWeights);
            }
        }
    }
}
