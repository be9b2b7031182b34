package dev.finetune.spark;

import dev.finetune.config.ConfigLoader;
import dev.finetune.data.ImageDataset;
import dev.finetune.run.Assembler;
import dev.finetune.run.FeaturesJob;
import dev.finetune.store.FeatureStore;
import dev.finetune.train.FineTuner;
import dev.finetune.train.TrainingData;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.IntStream;
import java.util.Iterator;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.api.java.function.FlatMapFunction;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SaveMode;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;

/**
 * {@code finetune features} as a Spark job: the data set's images are split over the executors in whole batches of
 * indices; each executor
 * JVM builds the config's model once ({@link ExecutorModels}), runs the frozen prefix with no autograd and one
 * intra-op thread per task, and the rows land as Parquet part files in {@code OUT/train/} and {@code OUT/val/}. The
 * driver writes the same {@code manifest.json} as the single-machine store, so {@code train.feature_store: OUT} reads
 * either, and the features are equal bit for bit (the same {@link FineTuner#prefixFeatures} call on the same
 * images).
 *
 * <p>The config, its checkpoint and its data must be readable at the same paths on every executor (a shared or
 * replicated filesystem); only indices travel through Spark.
 */
public final class SparkFeatures {
    /** The store's Parquet schema as Spark writes it. */
    static final StructType SCHEMA = new StructType()
            .add("path", DataTypes.StringType, false)
            .add("label", DataTypes.IntegerType, false)
            .add("split", DataTypes.StringType, false)
            .add("index", DataTypes.IntegerType, false)
            .add("feature", DataTypes.BinaryType, false);

    private SparkFeatures() {}

    /** What the job wrote. */
    public record Result(String cut, int entersAtStage, List<FeatureStore.SplitInfo> splits, double seconds) {}

    /**
     * Usage: {@code spark-submit --class dev.finetune.spark.SparkFeatures toolkit-spark.jar CONFIG OUT [CUT]
     * [PARTITIONS]}.
     */
    public static void main(String[] args) {
        if (args.length < 2) {
            System.err.println("usage: SparkFeatures CONFIG.yaml OUT_DIR [CUT_STAGE|-] [PARTITIONS]");
            System.exit(2);
        }
        SparkSession spark = SparkSession.builder().appName("finetune features").getOrCreate();
        try {
            String cut = args.length > 2 && !args[2].equals("-") ? args[2] : null;
            int partitions = args.length > 3 ? Integer.parseInt(args[3]) : spark.sparkContext().defaultParallelism();
            Result r = run(spark, Path.of(args[0]).toAbsolutePath(), List.of(), cut, Path.of(args[1]).toAbsolutePath(),
                    partitions);
            System.out.printf("stored the output of %s in %s: %s, %.1f s%n", r.cut(), args[1], r.splits(),
                    r.seconds());
        } finally {
            spark.stop();
        }
    }

    /** Runs the job on {@code spark}; {@code sets} are {@code --set} edits of the config. */
    public static Result run(SparkSession spark, Path config, List<String> sets, String cut, Path out,
            int partitions) {
        long t0 = System.nanoTime();
        ConfigLoader.Loaded loaded = ConfigLoader.load(config, sets);
        TrainingData data = Assembler.data(loaded);
        List<FeatureStore.SplitInfo> splits = new ArrayList<>();
        String cutName;
        int toStage;
        try (FineTuner ft = Assembler.fineTuner(loaded, Assembler.checkpoint(loaded), data)) {
            toStage = FeaturesJob.prefixEnd(ft, data, cut);
            cutName = ft.model().stageNames().get(toStage - 1);
            // The batches the single-machine prefix pass runs (FeatureCache.forEachPrefixBatch), for equal features.
            ExecutorModels.Spec spec = new ExecutorModels.Spec(config.toString(), List.copyOf(sets), toStage,
                    dev.finetune.train.FeatureCache.extractionBatch(loaded.config().train().batchSize(),
                            data.transforms().imageSize()));
            splits.add(writeSplit(spark, spec, "train", data.train(), out, partitions));
            if (data.val() != null && data.val().size() > 0) {
                splits.add(writeSplit(spark, spec, "val", data.val(), out, partitions));
            }
            FeatureStore.writeManifest(out, ft, data, toStage, splits, "/");
        }
        return new Result(cutName, toStage, splits, (System.nanoTime() - t0) / 1e9);
    }

    private static FeatureStore.SplitInfo writeSplit(SparkSession spark, ExecutorModels.Spec spec, String split,
            ImageDataset dataset, Path out, int partitions) {
        // Whole batches travel, so that every batch but the data set's last has the same shape: the fast-path guard
        // checks each new input shape once per model, and ragged partition tails would each cost a check.
        List<int[]> batches = new ArrayList<>();
        for (int from = 0; from < dataset.size(); from += spec.batchSize()) {
            batches.add(IntStream.range(from, Math.min(dataset.size(), from + spec.batchSize())).toArray());
        }
        JavaRDD<int[]> ids = JavaSparkContext.fromSparkContext(spark.sparkContext())
                .parallelize(batches, Math.max(1, Math.min(partitions, batches.size())));
        FlatMapFunction<Iterator<int[]>, Row> prefix = chunks -> ExecutorModels.features(spec, split, flatten(chunks));
        Dataset<Row> features = spark.createDataFrame(ids.mapPartitions(prefix), SCHEMA);
        Path dir = out.resolve(split);
        features.write().mode(SaveMode.Overwrite).parquet(dir.toString());
        long rows = spark.read().parquet(dir.toString()).count();
        long bytes = 0;
        try (var files = java.nio.file.Files.list(dir)) {
            for (Path p : files.filter(p -> p.toString().endsWith(".parquet")).toList()) {
                bytes += java.nio.file.Files.size(p);
            }
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
        return new FeatureStore.SplitInfo(split, (int) rows, bytes);
    }

    private static Iterator<Integer> flatten(Iterator<int[]> chunks) {
        List<Integer> all = new ArrayList<>();
        chunks.forEachRemaining(c -> {
            for (int i : c) {
                all.add(i);
            }
        });
        return all.iterator();
    }

    /** Rows as the schema wants them. */
    static Row row(String path, int label, String split, int index, byte[] feature) {
        return RowFactory.create(path, label, split, index, feature);
    }
}
