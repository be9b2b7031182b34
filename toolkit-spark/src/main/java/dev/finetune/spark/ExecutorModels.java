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
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Queue;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;

/**
 * What runs inside an executor JVM: models are built once per JVM (checkpoint read, prefix folded and checked by the
 * fast-path guard) and pooled — a task takes one, or builds one when all are busy, and gives it back — so an executor
 * with N task slots holds at most N models and every task after the first N reuses one. A model serves one task at a
 * time (a fine-tuner is not thread-safe), with one intra-op thread: the executor's cores are Spark's to share out.
 */
final class ExecutorModels {
    private ExecutorModels() {}

    /** Which model an executor builds: the config (with edits), the prefix's end, the batch size. */
    record Spec(String config, List<String> sets, int toStage, int batchSize) implements Serializable {}

    /** A fine-tuner and its data, as the driver built them. */
    private record Built(FineTuner ft, TrainingData data) {}

    private static final Map<Spec, Queue<Built>> MODELS = new ConcurrentHashMap<>();
    private static final Map<String, Queue<Predictor>> PREDICTORS = new ConcurrentHashMap<>();

    private static Built build(Spec s) {
        List<String> sets = new ArrayList<>(s.sets());
        sets.add("train.threads=1");
        ConfigLoader.Loaded loaded = ConfigLoader.load(Path.of(s.config()), sets);
        TrainingData data = Assembler.data(loaded);
        Built b = new Built(Assembler.fineTuner(loaded, Assembler.checkpoint(loaded), data), data);
        oneIntraOpThread();
        return b;
    }

    /**
     * One intra-op thread per task: the executor's cores are Spark's task slots. Set on the running engine too
     * ({@code train.threads} only applies before libtorch loads): where the driver shares the JVM (local mode) it has
     * started libtorch with every core, and N tasks x N threads would oversubscribe.
     */
    private static void oneIntraOpThread() {
        if (ai.djl.pytorch.jni.JniUtils.getNumThreads() != 1) {
            ai.djl.pytorch.jni.JniUtils.setNumThreads(1);
        }
    }

    private static <K, V> V take(Map<K, Queue<V>> pools, K key, java.util.function.Function<K, V> make) {
        V v = pools.computeIfAbsent(key, k -> new ConcurrentLinkedQueue<>()).poll();
        return v != null ? v : make.apply(key);
    }

    /**
     * The frozen prefix's output for the images of {@code split} whose indices {@code ids} gives, computed a batch at
     * a time as Spark consumes the rows: a task holds one batch of features, not its whole partition's.
     */
    static Iterator<Row> features(Spec spec, String split, Iterator<Integer> ids) {
        List<Integer> chosen = new ArrayList<>();
        ids.forEachRemaining(chosen::add);
        if (chosen.isEmpty()) {
            return java.util.Collections.emptyIterator();
        }
        return new PrefixRows(spec, split, chosen, take(MODELS, spec, ExecutorModels::build));
    }

    /** Rows of one partition, a batch at a time; gives the model back to the pool when the last row is taken. */
    private static final class PrefixRows implements Iterator<Row> {
        private final Spec spec;
        private final String split;
        private final List<Integer> chosen;
        private final List<ImageDataset.Sample> samples;
        private final Built built;
        private final NDManager manager;
        private final BatchLoader loader;
        private final java.util.ArrayDeque<Row> ready = new java.util.ArrayDeque<>();
        private boolean done;

        PrefixRows(Spec spec, String split, List<Integer> chosen, Built built) {
            this.spec = spec;
            this.split = split;
            this.chosen = chosen;
            this.built = built;
            ImageDataset all = split.equals("train") ? built.data().train() : built.data().val();
            this.samples = all.samples();
            Subset subset = new Subset(all.classNames(), chosen.stream().map(samples::get).toList(),
                    all.fingerprint() + ":" + chosen.hashCode());
            this.manager = built.ft().manager().newSubManager();
            this.loader = new BatchLoader(subset, manager, built.data().evalOptions(spec.batchSize()).toBuilder()
                    .numWorkers(1).prefetchBatches(2).build(), 0);
        }

        @Override
        public boolean hasNext() {
            while (ready.isEmpty() && !done) {
                if (!loader.hasNext()) {
                    done = true;
                    loader.close();
                    manager.close();
                    MODELS.get(spec).add(built);
                    break;
                }
                try (LoadedBatch batch = loader.next()) {
                    NDArray f = built.ft().prefixFeatures(batch.images(), spec.toStage());
                    f.attach(batch.manager());
                    float[] values = f.toFloatArray();
                    long[] labels = batch.labels().toLongArray();
                    int[] idx = batch.sampleIndices();
                    int per = values.length / idx.length;
                    for (int i = 0; i < idx.length; i++) {
                        int index = chosen.get(idx[i]);
                        ready.add(SparkFeatures.row(samples.get(index).source(), (int) labels[i], split, index,
                                dev.finetune.store.FeatureStore.rowBytes(values, i, per)));
                    }
                }
            }
            return !ready.isEmpty();
        }

        @Override
        public Row next() {
            if (!hasNext()) {
                throw new java.util.NoSuchElementException();
            }
            return ready.poll();
        }
    }

    /** {@code predict}'s top-k for each path, with the checkpoint's model opened once per executor JVM. */
    static Iterator<Row> predictions(String checkpoint, String arch, int k, Iterator<String> paths) {
        String key = checkpoint + "|" + arch;
        Predictor p = take(PREDICTORS, key, k2 -> {
            dev.finetune.engine.Engines.pytorch(1);
            Predictor made = new Predictor(TrainedModel.open(checkpoint, arch));
            oneIntraOpThread();
            return made;
        });
        try {
            return predictions(p, k, paths);
        } finally {
            PREDICTORS.get(key).add(p);
        }
    }

    private static Iterator<Row> predictions(Predictor p, int k, Iterator<String> paths) {
        List<Path> files = new ArrayList<>();
        paths.forEachRemaining(s -> files.add(Path.of(s)));
        List<Row> out = new ArrayList<>(files.size());
        if (files.isEmpty()) {
            return out.iterator();
        }
        List<Predictor.Prediction> predictions = p.predict(files, k);
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
