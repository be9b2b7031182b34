package dev.finetune.spark;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.finetune.config.ConfigLoader;
import dev.finetune.predict.Predictor;
import dev.finetune.predict.TrainedModel;
import dev.finetune.run.Assembler;
import dev.finetune.run.FeaturesJob;
import dev.finetune.store.FeatureStore;
import dev.finetune.train.FeatureCache;
import dev.finetune.train.FineTuner;
import dev.finetune.train.TrainingData;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The Spark jobs on {@code local[2]} equal the single-machine paths: the feature store's features bit for bit, and
 * batch prediction's top-k against {@code Predictor.predict}; and a features job over the Fashion-MNIST test split
 * (Debian's IDX files) runs end to end.
 *
 * <p>Run by {@code .ci/run} ({@code -Dfinetune.test.exhaustive=true}, about 30 s); {@code scripts/test.sh} builds this
 * module but skips these, to stay within its five minutes on two cores.
 */
class SparkJobsTest {
    private static SparkSession spark;
    private static final Path REPO = repo();

    @TempDir
    Path tmp;

    static Path repo() {
        Path p = Path.of("").toAbsolutePath();
        while (p != null && !Files.isRegularFile(p.resolve("configs/quickstart.yaml"))) {
            p = p.getParent();
        }
        return p;
    }

    @BeforeAll
    static void start() {
        org.junit.jupiter.api.Assumptions.assumeTrue(Boolean.getBoolean("finetune.test.exhaustive"),
                "Spark jobs run in .ci/run (-Dfinetune.test.exhaustive=true)");
        spark = SparkSession.builder().master("local[2]").appName("finetune-test")
                .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "2").getOrCreate();
    }

    @AfterAll
    static void stop() {
        if (spark != null) {
            spark.stop();
        }
    }

    @Test
    void featuresOnSparkEqualTheSingleMachineStore() {
        Path config = REPO.resolve("configs/quickstart.yaml");
        Path single = tmp.resolve("single");
        Path onSpark = tmp.resolve("spark");
        FeaturesJob.run(ConfigLoader.load(config, List.of()), null, single);
        long t0 = System.nanoTime();
        SparkFeatures.Result r = SparkFeatures.run(spark, config, List.of(), null, onSpark, 2);
        System.out.printf("spark features: %s in %.1f s (local[2])%n", r.splits(), (System.nanoTime() - t0) / 1e9);
        assertEquals("layer4", r.cut());
        assertTrue(Files.isDirectory(onSpark.resolve("train")) && Files.isRegularFile(onSpark.resolve(
                "manifest.json")));
        ConfigLoader.Loaded loaded = ConfigLoader.load(config, List.of());
        TrainingData data = Assembler.data(loaded);
        try (FineTuner ft = Assembler.fineTuner(loaded, Assembler.checkpoint(loaded), data);
                NDManager m = ft.manager().newSubManager()) {
            FeatureCache[] a = FeatureStore.load(single, ft, data, 5);
            FeatureCache[] b = FeatureStore.load(onSpark, ft, data, 5);
            for (int s = 0; s < 2; s++) {
                int n = s == 0 ? data.train().size() : data.val().size();
                assertEquals(n, a[s].size());
                assertEquals(n, b[s].size());
                int[] order = java.util.stream.IntStream.range(0, n).toArray();
                NDArray[] x = a[s].batch(order, m);
                NDArray[] y = b[s].batch(order, m);
                assertArrayEquals(x[0].toFloatArray(), y[0].toFloatArray(), 0f, "features by data set index");
                assertArrayEquals(x[1].toLongArray(), y[1].toLongArray(), "labels");
                a[s].close();
                b[s].close();
            }
        }
    }

    @Test
    void featuresOverTheFashionMnistTestSplitRunEndToEnd() {
        Path config = REPO.resolve("configs/experiments/fmnist-b-linear-probe.yaml");
        // Twenty training images per class keep the test short; the validation split is all 5,000 test images of
        // classes 5-9, read from Debian's IDX files.
        SparkFeatures.Result r = SparkFeatures.run(spark, config,
                List.of("data.idx.train_class_limits=[20,20,20,20,20]"), null, tmp.resolve("fmnist"), 2);
        assertEquals(100, r.splits().get(0).rows());
        assertEquals(5000, r.splits().get(1).rows());
        System.out.printf("spark features over the Fashion-MNIST test split: %s in %.1f s%n", r.splits(),
                r.seconds());
    }

    @Test
    void batchPredictionOnSparkEqualsPredict() {
        String checkpoint = REPO.resolve("models/resnet18-fmnist-a.safetensors").toString();
        Path folder = REPO.resolve("data/fashion-mnist-b/val");
        Path out = tmp.resolve("predictions");
        long n = SparkPredict.run(spark, checkpoint, null, List.of(folder), 3, out, 2);
        List<Row> rows = spark.read().parquet(out.toString()).collectAsList();
        assertEquals(n, rows.size());
        Map<String, Row> byFile = new HashMap<>();
        rows.forEach(r -> byFile.put(r.getString(0), r));
        try (TrainedModel tm = TrainedModel.open(checkpoint, null)) {
            List<Predictor.Prediction> expected = new Predictor(tm).predict(Predictor.expand(List.of(folder)), 3);
            assertEquals(expected.size(), rows.size());
            double worst = 0;
            for (Predictor.Prediction p : expected) {
                Row r = byFile.get(Path.of(p.file()).toAbsolutePath().toString());
                List<String> labels = r.getList(1);
                List<Double> probs = r.getList(3);
                for (int i = 0; i < 3; i++) {
                    assertEquals(p.top().get(i).label(), labels.get(i), p.file());
                    worst = Math.max(worst, Math.abs(p.top().get(i).probability() - probs.get(i)));
                }
            }
            System.out.printf("spark predict: %d images, top-3 equal, probabilities within %.2g%n", n, worst);
            // One intra-op thread on the executors against the default here: summation order may differ.
            assertTrue(worst < 1e-5, "probabilities differ by " + worst);
        }
    }
}
