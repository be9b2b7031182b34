package dev.finetune.spark;

import dev.finetune.predict.Predictor;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SaveMode;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.catalyst.encoders.ExpressionEncoder;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;

/**
 * {@code finetune predict} as a Spark job: image paths (files, or folders expanded as {@code predict} expands them)
 * spread over the executors; each executor JVM opens the checkpoint once and runs {@link Predictor#predict}, the
 * single-machine code path, on its partition; the top-k classes and probabilities land in Parquet.
 */
public final class SparkPredict {
    /** One row per image: its path and the top-k labels, class indices and softmax probabilities, best first. */
    static final StructType SCHEMA = new StructType()
            .add("file", DataTypes.StringType, false)
            .add("labels", DataTypes.createArrayType(DataTypes.StringType, false), false)
            .add("indices", DataTypes.createArrayType(DataTypes.IntegerType, false), false)
            .add("probabilities", DataTypes.createArrayType(DataTypes.DoubleType, false), false);

    private SparkPredict() {}

    /** Usage: {@code spark-submit --class dev.finetune.spark.SparkPredict JAR CHECKPOINT OUT_DIR TOP_K PATH…}. */
    public static void main(String[] args) {
        if (args.length < 4) {
            System.err.println("usage: SparkPredict CHECKPOINT OUT_DIR TOP_K IMAGE_OR_FOLDER...");
            System.exit(2);
        }
        SparkSession spark = SparkSession.builder().appName("finetune predict").getOrCreate();
        try {
            List<Path> inputs = new ArrayList<>();
            for (int i = 3; i < args.length; i++) {
                inputs.add(Path.of(args[i]).toAbsolutePath());
            }
            long n = run(spark, args[0], null, inputs, Integer.parseInt(args[2]), Path.of(args[1]).toAbsolutePath(),
                    spark.sparkContext().defaultParallelism());
            System.out.printf("predicted %d images into %s%n", n, args[1]);
        } finally {
            spark.stop();
        }
    }

    /**
     * Predicts every image {@code inputs} names and writes the rows to {@code out} (Parquet); returns how many.
     *
     * @param arch the architecture of a plain checkpoint without metadata (null: as {@code predict})
     */
    public static long run(SparkSession spark, String checkpoint, String arch, List<Path> inputs, int k, Path out,
            int partitions) {
        List<String> files = Predictor.expand(inputs).stream().map(p -> p.toAbsolutePath().toString()).toList();
        Dataset<String> paths = spark.createDataset(files, Encoders.STRING()).repartition(partitions);
        MapPartitionsFunction<String, Row> predict = rows -> ExecutorModels.predictions(checkpoint, arch, k, rows);
        Dataset<Row> rows = paths.mapPartitions(predict, ExpressionEncoder.apply(SCHEMA));
        rows.write().mode(SaveMode.Overwrite).parquet(out.toString());
        return files.size();
    }
}
