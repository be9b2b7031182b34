package dev.finetune.spark;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.finetune.config.ConfigLoader;
import dev.finetune.data.BatchLoader;
import dev.finetune.data.ImageDataset;
import dev.finetune.data.LoadedBatch;
import dev.finetune.predict.Predictor;
import dev.finetune.predict.TrainedModel;
import dev.finetune.run.Assembler;
import dev.finetune.train.FineTuner;
import dev.finetune.train.TrainingData;
import java.io.Serializable;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;

/**
 * What runs inside an executor JVM: the model is built once per JVM and spec (checkpoint read, prefix folded and
 * checked by the fast-path guard), then every task of that JVM reuses it. Tasks run one at a time per model (the
 * fine-tuner is not thread-safe), each with one intra-op thread: the executor's cores are Spark's to share out.
 */
final class ExecutorModels {
    private ExecutorModels() {}

    /** Which model an executor builds: the config (with edits), the prefix's end, the batch size. */
    record Spec(String config, List<String> sets, int toStage, int batchSize) implements Serializable {}

    /** A fine-tuner and its data, as the driver built them. */
    private record Built(FineTuner ft, TrainingData data) {}

    private static final Map<Spec, Built> MODELS = new ConcurrentHashMap<>();
    private static final Map<String, Predictor> PREDICTORS = new ConcurrentHashMap<>();

    private static Built built(Spec spec) {
        return MODELS.computeIfAbsent(spec, s -> {
            // One intra-op thread per task: the executor's cores are Spark's tasks.
            List<String> sets = new ArrayList<>(s.sets());
            sets.add("train.threads=1");
            ConfigLoader.Loaded loaded = ConfigLoader.load(Path.of(s.config()), sets);
            TrainingData data = Assembler.data(loaded);
            return new Built(Assembler.fineTuner(loaded, Assembler.checkpoint(loaded), data), data);
        });
    }

    /** The frozen prefix's output for the images of {@code split} whose indices {@code ids} gives. */
    static Iterator<Row> features(Spec spec, String split, Iterator<Integer> ids) {
        Built b = built(spec);
        ImageDataset all = split.equals("train") ? b.data().train() : b.data().val();
        List<Integer> chosen = new ArrayList<>();
        ids.forEachRemaining(chosen::add);
        List<Row> out = new ArrayList<>(chosen.size());
        if (chosen.isEmpty()) {
            return out.iterator();
        }
        List<ImageDataset.Sample> samples = all.samples();
        Subset subset = new Subset(all.classNames(), chosen.stream().map(samples::get).toList(),
                all.fingerprint() + ":" + chosen.hashCode());
        synchronized (b) {
            try (NDManager m = b.ft().manager().newSubManager();
                    BatchLoader loader = new BatchLoader(subset, m, b.data().evalOptions(spec.batchSize())
                            .toBuilder().numWorkers(1).prefetchBatches(2).build(), 0)) {
                while (loader.hasNext()) {
                    try (LoadedBatch batch = loader.next()) {
                        NDArray f = b.ft().prefixFeatures(batch.images(), spec.toStage());
                        f.attach(batch.manager());
                        float[] values = f.toFloatArray();
                        long[] labels = batch.labels().toLongArray();
                        int[] idx = batch.sampleIndices();
                        int per = values.length / idx.length;
                        for (int i = 0; i < idx.length; i++) {
                            ByteBuffer bytes = ByteBuffer.allocate(per * 4).order(ByteOrder.LITTLE_ENDIAN);
                            bytes.asFloatBuffer().put(values, i * per, per);
                            int index = chosen.get(idx[i]);
                            out.add(SparkFeatures.row(all.samples().get(index).source(), (int) labels[i], split,
                                    index, bytes.array()));
                        }
                    }
                }
            }
        }
        return out.iterator();
    }

    /** {@code predict}'s top-k for each path, with the checkpoint's model opened once per executor JVM. */
    static Iterator<Row> predictions(String checkpoint, String arch, int k, Iterator<String> paths) {
        Predictor p = PREDICTORS.computeIfAbsent(checkpoint + "|" + arch, key -> {
            dev.finetune.engine.Engines.pytorch(1);
            return new Predictor(TrainedModel.open(checkpoint, arch));
        });
        List<Path> files = new ArrayList<>();
        paths.forEachRemaining(s -> files.add(Path.of(s)));
        List<Row> out = new ArrayList<>(files.size());
        if (files.isEmpty()) {
            return out.iterator();
        }
        List<Predictor.Prediction> predictions;
        synchronized (p) {
            predictions = p.predict(files, k);
        }
        for (Predictor.Prediction pr : predictions) {
            String[] labels = pr.top().stream().map(Predictor.Scored::label).toArray(String[]::new);
            int[] indices = pr.top().stream().mapToInt(Predictor.Scored::index).toArray();
            double[] probs = pr.top().stream().mapToDouble(Predictor.Scored::probability).toArray();
            out.add(RowFactory.create(pr.file(), toSeq(labels), toSeqInt(indices), toSeqDouble(probs)));
        }
        return out.iterator();
    }

    private static scala.collection.immutable.Seq<String> toSeq(String[] a) {
        return scala.jdk.javaapi.CollectionConverters.asScala(java.util.Arrays.asList(a)).toList();
    }

    private static scala.collection.immutable.Seq<Object> toSeqInt(int[] a) {
        List<Object> l = new ArrayList<>();
        for (int v : a) {
            l.add(v);
        }
        return scala.jdk.javaapi.CollectionConverters.asScala(l).toList();
    }

    private static scala.collection.immutable.Seq<Object> toSeqDouble(double[] a) {
        List<Object> l = new ArrayList<>();
        for (double v : a) {
            l.add(v);
        }
        return scala.jdk.javaapi.CollectionConverters.asScala(l).toList();
    }

    /** Some samples of a data set, in the given order. */
    private record Subset(List<String> classNames, List<Sample> samples, String fingerprint) implements ImageDataset {}
}
