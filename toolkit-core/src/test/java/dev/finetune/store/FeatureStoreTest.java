package dev.finetune.store;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.finetune.ConfigException;
import dev.finetune.ErrorKind;
import dev.finetune.FinetuneException;
import dev.finetune.checkpoint.Checkpoints;
import dev.finetune.data.TransformSpec;
import dev.finetune.policy.BnPolicy;
import dev.finetune.policy.FreezePolicy;
import dev.finetune.testing.TorchReference;
import dev.finetune.train.FeatureCache;
import dev.finetune.train.FineTuner;
import dev.finetune.train.TrainingData;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.apache.parquet.conf.PlainParquetConfiguration;
import org.apache.parquet.example.data.Group;
import org.apache.parquet.example.data.simple.SimpleGroupFactory;
import org.apache.parquet.hadoop.ParquetWriter;
import org.apache.parquet.hadoop.example.ExampleParquetWriter;
import org.apache.parquet.io.LocalOutputFile;
import org.apache.parquet.io.api.Binary;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The on-disk feature store, read back through its memory-mapped cache, equals the in-memory feature cache bit for bit
 * (features, labels, row order, at two cuts:
 * the linear probe's pooled-layer4 input and the last-stage policy's layer3 map), refuses a store computed under
 * another key naming the field, and ends hostile files in a data error.
 */
class FeatureStoreTest {
    @TempDir
    Path tmp;

    private static TrainingData data() {
        return TrainingData.imageFolder(TorchReference.repoRoot().resolve("data/fashion-mnist-b"), spec(32), 0, 0);
    }

    /** The quickstart's preprocessing: resize to {@code resize}, centre-crop 32, ImageNet statistics. */
    private static TransformSpec spec(int resize) {
        return new TransformSpec(32, resize, false, false, new float[] {0.485f, 0.456f, 0.406f},
                new float[] {0.229f, 0.224f, 0.225f});
    }

    private static FineTuner fineTuner(FreezePolicy policy) {
        return FineTuner.builder()
                .checkpoint(Checkpoints.read(TorchReference.repoRoot().resolve("models/resnet18-fmnist-a.safetensors")))
                .headClasses(5).seed(0).policy(policy).build();
    }

    private static FreezePolicy lastStage() {
        return new FreezePolicy(false, -1, List.of(FreezePolicy.Rule.train("t", "layer4", "fc")), BnPolicy.AUTO);
    }

    @Test
    void storeReadBackEqualsTheInMemoryCacheBitForBit() {
        TrainingData data = data();
        for (FreezePolicy policy : List.of(FreezePolicy.linearProbe(), lastStage())) {
            try (FineTuner ft = fineTuner(policy)) {
                int stage = ft.plan().trainableNames().stream().mapToInt(n -> ft.model().stageIndexOf(n)).min()
                        .orElseThrow();
                Path dir = tmp.resolve("store-" + stage);
                List<FeatureStore.SplitInfo> splits = FeatureStore.write(ft, data, stage, 64, dir);
                assertEquals(2, splits.size());
                FeatureCache[] stored = FeatureStore.load(dir, ft, data, stage);
                try (FeatureCache memory = FeatureCache.build(ft, data, stage, 64, Long.MAX_VALUE, "memory");
                        FeatureCache memoryVal = FeatureCache.build(ft, data, data.val(), stage, 64, Long.MAX_VALUE,
                                "memory");
                        FeatureCache storedTrain = stored[0];
                        FeatureCache storedVal = stored[1];
                        NDManager m = ft.manager().newSubManager()) {
                    same(memory, storedTrain, m, data.train().size(), "train, stage " + stage);
                    same(memoryVal, storedVal, m, data.val().size(), "val, stage " + stage);
                    System.out.printf("feature store: stage %d, %d + %d rows equal the in-memory cache%n", stage,
                            storedTrain.size(), storedVal.size());
                }
            }
        }
    }

    private static void same(FeatureCache a, FeatureCache b, NDManager m, int n, String what) {
        assertEquals(a.size(), b.size(), what);
        assertEquals(a.stage(), b.stage(), what);
        NDArray[] ra = a.rows(0, a.size(), m);
        NDArray[] rb = b.rows(0, b.size(), m);
        assertEquals(ra[0].getShape(), rb[0].getShape(), what);
        assertArrayEquals(ra[0].toFloatArray(), rb[0].toFloatArray(), 0f, what + ": features");
        assertArrayEquals(ra[1].toLongArray(), rb[1].toLongArray(), what + ": labels");
        int[] order = new int[n];
        for (int i = 0; i < n; i++) {
            order[i] = n - 1 - i;
        }
        assertArrayEquals(a.batch(order, m)[0].toFloatArray(), b.batch(order, m)[0].toFloatArray(), 0f,
                what + ": rows by data set index");
    }

    @Test
    void aStoreOfAnotherCutOrPreprocessingIsRefusedNamingTheField() {
        TrainingData data = data();
        try (FineTuner ft = fineTuner(FreezePolicy.linearProbe())) {
            Path dir = tmp.resolve("probe");
            FeatureStore.write(ft, data, 5, 64, dir);
            ConfigException cut = assertThrows(ConfigException.class, () -> FeatureStore.checkKey(dir, ft, data, 4));
            assertTrue(cut.getMessage().contains("train.feature_store") && cut.getMessage().contains("cut: store has"
                    + " 'layer4', this run needs 'layer3'"), cut.getMessage());
            TrainingData other = TrainingData.imageFolder(TorchReference.repoRoot().resolve("data/fashion-mnist-b"),
                    spec(36), 0, 0);
            ConfigException prep = assertThrows(ConfigException.class,
                    () -> FeatureStore.checkKey(dir, ft, other, 5));
            assertTrue(prep.getMessage().contains("preprocessing: store has") && prep.getMessage()
                    .contains("resizeSize=36"), prep.getMessage());
            if (dev.finetune.engine.CpuFeatures.hasBf16()) {
                // float32 features are not bf16 features: a store of one is refused for the other.
                try (FineTuner bf = FineTuner.builder().checkpoint(Checkpoints.read(TorchReference.repoRoot()
                                .resolve("models/resnet18-fmnist-a.safetensors"))).headClasses(5).seed(0)
                        .policy(FreezePolicy.linearProbe()).prefixPrecision(dev.finetune.model.Precision.BF16)
                        .build()) {
                    ConfigException precision = assertThrows(ConfigException.class,
                            () -> FeatureStore.checkKey(dir, bf, data, 5));
                    assertTrue(precision.getMessage().contains("precision"), precision.getMessage());
                }
            }
            ConfigException none = assertThrows(ConfigException.class,
                    () -> FeatureStore.checkKey(tmp.resolve("nothing"), ft, data, 5));
            assertTrue(none.getMessage().contains("is not a feature store"), none.getMessage());
        }
    }

    @Test
    void hostileStoreFilesEndInADataError() throws Exception {
        TrainingData data = data();
        try (FineTuner ft = fineTuner(FreezePolicy.linearProbe())) {
            Path dir = tmp.resolve("hostile");
            FeatureStore.write(ft, data, 5, 64, dir);
            Path train = dir.resolve("train.parquet");
            byte[] good = Files.readAllBytes(train);

            Files.write(train, java.util.Arrays.copyOf(good, good.length / 2)); // truncated
            assertDataError(dir, ft, data, "is unreadable");

            // A row whose feature has the wrong length, and one naming an image outside the data set.
            for (int variant = 0; variant < 2; variant++) {
                Files.deleteIfExists(train);
                SimpleGroupFactory g = new SimpleGroupFactory(FeatureStore.SCHEMA);
                try (ParquetWriter<Group> w = ExampleParquetWriter.builder(new LocalOutputFile(train))
                        .withConf(new PlainParquetConfiguration()).withType(FeatureStore.SCHEMA).build()) {
                    w.write(g.newGroup().append("path", "x").append("label", 0).append("split", "train")
                            .append("index", variant == 0 ? 0 : 1 << 30)
                            .append("feature", Binary.fromConstantByteArray(new byte[variant == 0 ? 12 : 2048])));
                }
                assertDataError(dir, ft, data, variant == 0 ? "feature bytes" : "outside the");
            }

            Files.write(train, good);
            Files.writeString(dir.resolve(FeatureStore.MANIFEST), "{not json");
            assertDataError(dir, ft, data, "manifest");
        }
    }

    private static void assertDataError(Path dir, FineTuner ft, TrainingData data, String says) {
        FinetuneException e = assertThrows(FinetuneException.class, () -> {
            FeatureCache[] c = FeatureStore.load(dir, ft, data, 5);
            c[0].close();
            c[1].close();
        });
        assertEquals(ErrorKind.DATA, e.kind(), e.getMessage());
        assertTrue(e.getMessage().contains(says), e.getMessage());
    }
}
