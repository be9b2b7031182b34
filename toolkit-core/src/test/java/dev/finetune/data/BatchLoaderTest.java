package dev.finetune.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.finetune.ErrorKind;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class BatchLoaderTest {
    private static final TransformSpec SMALL = TransformSpec.defaults().withImageSize(16);

    @TempDir Path dir;
    private NDManager manager;
    private IdxImageDataset idx;

    @BeforeEach
    void setUp() throws Exception {
        manager = NDManager.newBaseManager();
        int[] labels = new int[23];
        Arrays.setAll(labels, i -> i % 3);
        Path[] pair = IdxFixtures.writePair(dir, "t", 12, 10, true, labels);
        idx = IdxImageDataset.builder()
                .images(IdxReader.read(pair[0], pair[1]))
                .classNames(List.of("a", "b", "c"))
                .build();
    }

    @AfterEach
    void tearDown() {
        manager.close();
    }

    private static BatchLoader.Options.Builder options(int batchSize) {
        return BatchLoader.Options.builder().batchSize(batchSize).transforms(SMALL);
    }

    /** Every batch of one epoch as plain Java values, so loaders can be compared after they are closed. */
    private record Epoch(List<int[]> indices, List<long[]> labels, List<float[]> images, List<Shape> shapes) {}

    private Epoch load(ImageDataset dataset, BatchLoader.Options options, int epoch) {
        Epoch result = new Epoch(new ArrayList<>(), new ArrayList<>(), new ArrayList<>(), new ArrayList<>());
        try (BatchLoader loader = new BatchLoader(dataset, manager, options, epoch)) {
            while (loader.hasNext()) {
                try (LoadedBatch batch = loader.next()) {
                    assertEquals(DataType.FLOAT32, batch.images().getDataType());
                    assertEquals(DataType.INT64, batch.labels().getDataType());
                    assertFalse(batch.images().hasGradient());
                    result.indices().add(batch.sampleIndices());
                    result.labels().add(batch.labels().toLongArray());
                    result.images().add(batch.images().toFloatArray());
                    result.shapes().add(batch.images().getShape());
                }
            }
        }
        assertEquals(List.of(), manager.getManagedArrays(), "every batch and intermediate must be freed");
        return result;
    }

    @Test
    void evalEpochVisitsEverySampleOnceInOrderWithMatchingLabels() {
        Epoch epoch = load(idx, options(5).numWorkers(2).build(), 0);
        assertEquals(5, epoch.indices().size());
        assertArrayEquals(new int[] {0, 1, 2, 3, 4}, epoch.indices().get(0));
        assertArrayEquals(new int[] {20, 21, 22}, epoch.indices().get(4));
        assertEquals(new Shape(5, 3, 16, 16), epoch.shapes().get(0));
        assertEquals(new Shape(3, 3, 16, 16), epoch.shapes().get(4));
        for (int b = 0; b < epoch.indices().size(); b++) {
            int[] indices = epoch.indices().get(b);
            for (int i = 0; i < indices.length; i++) {
                assertEquals(indices[i] % 3, epoch.labels().get(b)[i]);
            }
        }
    }

    @Test
    void shuffleIsAPermutationThatChangesWithTheEpochAndDropLastDropsTheTail() {
        BatchLoader.Options options = options(5).shuffle(true).seed(9).dropLast(true).build();
        Epoch first = load(idx, options, 0);
        Epoch second = load(idx, options, 1);
        assertEquals(4, first.indices().size());
        int[] all = first.indices().stream().flatMapToInt(Arrays::stream).sorted().toArray();
        assertEquals(20, all.length);
        assertEquals(20, Arrays.stream(all).distinct().count());
        assertFalse(Arrays.equals(first.indices().get(0), second.indices().get(0)));
    }

    @Test
    void sameSeedGivesIdenticalBatchesWhateverTheNumberOfWorkers() {
        BatchLoader.Options.Builder base = options(4).shuffle(true).seed(1234).augment(true);
        Epoch oneWorker = load(idx, base.numWorkers(1).prefetchBatches(1).build(), 2);
        Epoch threeWorkers = load(idx, base.numWorkers(3).prefetchBatches(6).build(), 2);
        Epoch inline = load(idx, base.numWorkers(0).build(), 2);
        Epoch otherSeed = load(idx, base.numWorkers(3).seed(99).build(), 2);

        for (Epoch other : List.of(threeWorkers, inline)) {
            assertEquals(oneWorker.indices().size(), other.indices().size());
            for (int b = 0; b < oneWorker.indices().size(); b++) {
                assertArrayEquals(oneWorker.indices().get(b), other.indices().get(b));
                assertArrayEquals(oneWorker.labels().get(b), other.labels().get(b));
                assertArrayEquals(oneWorker.images().get(b), other.images().get(b), 0f);
            }
        }
        assertFalse(Arrays.equals(oneWorker.images().get(0), otherSeed.images().get(0)));
    }

    @Test
    void augmentationDiffersFromEvalPreprocessing() {
        Epoch eval = load(idx, options(4).build(), 0);
        Epoch train = load(idx, options(4).augment(true).build(), 0);
        assertArrayEquals(eval.indices().get(0), train.indices().get(0));
        assertFalse(Arrays.equals(eval.images().get(0), train.images().get(0)));
    }

    private ImageFolderDataset folderWithOneCorruptImage() throws Exception {
        for (int i = 0; i < 4; i++) {
            ImageFixtures.gradient(dir.resolve("f/a/" + i + ".png"), 20, 24);
            ImageFixtures.solid(dir.resolve("f/b/" + i + ".jpg"), 30, 20, 0x804020);
        }
        ImageFixtures.corruptPng(dir.resolve("f/a/2.png"));
        return new ImageFolderDataset(ImageFolderIndex.scan(dir.resolve("f")));
    }

    @Test
    void corruptImageUnderFailSurfacesTheWorkersDataExceptionOnTheConsumer() throws Exception {
        ImageFolderDataset ds = folderWithOneCorruptImage();
        Path bad = dir.resolve("f/a/2.png");
        try (BatchLoader loader = new BatchLoader(ds, manager, options(3).numWorkers(2).build(), 0)) {
            // Batch 0 is a/0.png, a/1.png, a/2.png: built on a worker, it fails there.
            DataException e = assertThrows(DataException.class, loader::next);
            assertEquals(ErrorKind.DATA, e.kind());
            assertTrue(e.getMessage().startsWith(bad + ": cannot be decoded as an image ("), e.getMessage());
            assertTrue(e.getMessage().endsWith("or use the SKIP bad-image policy to leave such files out"));
            assertFalse(loader.hasNext(), "a failed loader stops");
        }
    }

    @Test
    void corruptImageUnderSkipIsLeftOutAndRecorded() throws Exception {
        ImageFolderDataset ds = folderWithOneCorruptImage();
        SkippedImages skipped = new SkippedImages();
        BatchLoader.Options options = options(3)
                .numWorkers(2)
                .onBadImage(BadImagePolicy.SKIP)
                .skipped(skipped)
                .build();

        Epoch epoch = load(ds, options, 0);
        load(ds, options, 1);

        assertArrayEquals(new int[] {0, 1}, epoch.indices().get(0));
        assertEquals(new Shape(2, 3, 16, 16), epoch.shapes().get(0));
        assertEquals(7, epoch.indices().stream().mapToInt(a -> a.length).sum());
        String bad = dir.resolve("f/a/2.png").toString();
        Map<String, String> files = skipped.files();
        assertEquals(List.of(bad), List.copyOf(files.keySet()));
        assertTrue(files.get(bad).startsWith(bad + ": cannot be decoded as an image"), files.get(bad));
        assertEquals(1, skipped.count());
        assertEquals(2, skipped.dropCount());
    }

    @Test
    void batchWhoseImagesAreAllBadIsLeftOutUnderSkip() throws Exception {
        ImageFixtures.corruptPng(dir.resolve("g/a/0.png"));
        ImageFixtures.solid(dir.resolve("g/b/1.png"), 8, 8, 0);
        ImageFolderDataset ds = new ImageFolderDataset(ImageFolderIndex.scan(dir.resolve("g")));
        Epoch epoch = load(ds, options(1).onBadImage(BadImagePolicy.SKIP).build(), 0);
        assertEquals(1, epoch.indices().size());
        assertArrayEquals(new int[] {1}, epoch.indices().get(0));
    }

    @Test
    void closingEarlyStopsWorkersAndFreesPrefetchedBatches() {
        BatchLoader loader = new BatchLoader(idx, manager, options(2).numWorkers(3).build(), 0);
        LoadedBatch first = loader.next();
        first.close();
        loader.close();
        loader.close();
        assertFalse(loader.hasNext());
        assertEquals(List.of(), manager.getManagedArrays(), "prefetched batches must be freed");
        for (Thread thread : Thread.getAllStackTraces().keySet()) {
            if (thread.getName().startsWith("batch-loader-")) {
                // the pool has terminated; its threads are at most returning from run()
                assertTimeoutPreemptively(Duration.ofSeconds(5), () -> thread.join());
            }
        }
    }

    @Test
    void batchesGetTheirNativeMemoryOnTheConsumerThreadNotOnWorkers() {
        // Workers only preprocess in Java; the consumer copies each batch into a tensor, so the batches' native memory
        // comes from one thread's malloc arena (made on the workers, a training run's batches filled an arena per
        // worker thread: ~1 GB more than the step itself at 128x112x112, docs/performance.md).
        java.util.Set<String> threads = java.util.concurrent.ConcurrentHashMap.newKeySet();
        NDManager recording = (NDManager) java.lang.reflect.Proxy.newProxyInstance(NDManager.class.getClassLoader(),
                new Class<?>[] {NDManager.class}, (proxy, method, args) -> {
                    if (method.getName().equals("newSubManager")) {
                        threads.add(Thread.currentThread().getName());
                    }
                    try {
                        return method.invoke(manager, args);
                    } catch (java.lang.reflect.InvocationTargetException e) {
                        throw e.getCause();
                    }
                });
        int batches = 0;
        try (BatchLoader loader = new BatchLoader(idx, recording, options(3).numWorkers(3).prefetchBatches(6).build(),
                0)) {
            while (loader.hasNext()) {
                try (LoadedBatch batch = loader.next()) {
                    assertEquals(batch.size(), batch.images().getShape().get(0));
                    batches++;
                }
            }
        }
        assertEquals(8, batches);
        assertEquals(java.util.Set.of(Thread.currentThread().getName()), threads);
        assertEquals(List.of(), manager.getManagedArrays(), "every batch must be freed");
    }

    @Test
    void throughputIsMeasuredOverLoadedBatches() {
        try (BatchLoader loader = new BatchLoader(idx, manager, options(4).numWorkers(2).build(), 0)) {
            double rate = loader.measureThroughput(6);
            assertTrue(rate > 0, "images/s " + rate);
            assertFalse(loader.hasNext());
        }
    }

    @Test
    void badOptionsAreConfigErrors() {
        assertEquals("batch size must be >= 1, found 0",
                assertThrows(dev.finetune.FinetuneException.class, () -> options(0).build()).getMessage());
        assertEquals("prefetch batches must be >= 1, found 0",
                assertThrows(dev.finetune.FinetuneException.class,
                        () -> options(1).prefetchBatches(0).build()).getMessage());
        BatchLoader.Options options = options(8).shuffle(true).build();
        assertEquals(options, options.toBuilder().build());
        assertNotEquals(options, options.toBuilder().seed(5).build());
        assertSame(options.skipped(), options.toBuilder().build().skipped());
    }
}
