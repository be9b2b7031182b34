package dev.finetune.store;

import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.finetune.ConfigException;
import dev.finetune.ErrorKind;
import dev.finetune.FinetuneException;
import dev.finetune.Versions;
import dev.finetune.data.ImageDataset;
import dev.finetune.io.AtomicFiles;
import dev.finetune.model.Network;
import dev.finetune.train.FeatureCache;
import dev.finetune.train.FineTuner;
import dev.finetune.train.TrainingData;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.apache.parquet.conf.PlainParquetConfiguration;
import org.apache.parquet.example.data.Group;
import org.apache.parquet.example.data.simple.SimpleGroupFactory;
import org.apache.parquet.hadoop.ParquetReader;
import org.apache.parquet.hadoop.ParquetWriter;
import org.apache.parquet.hadoop.api.ReadSupport;
import org.apache.parquet.hadoop.example.ExampleParquetWriter;
import org.apache.parquet.hadoop.example.GroupReadSupport;
import org.apache.parquet.hadoop.metadata.CompressionCodecName;
import org.apache.parquet.io.LocalInputFile;
import org.apache.parquet.io.LocalOutputFile;
import org.apache.parquet.io.api.Binary;
import org.apache.parquet.schema.MessageType;
import org.apache.parquet.schema.MessageTypeParser;

/**
 * The frozen prefix's outputs on disk: one Parquet file per split ({@code train.parquet}, {@code val.parquet}; rows
 * of path, label, split, data set index and the feature tensor as little-endian float32 bytes) and a
 * {@code manifest.json} with the key they were computed under — the architecture, the cut, the SHA-256 of the
 * prefix's weights as loaded (covering the checkpoint file and any key mapping), the preprocessing and each split's
 * data fingerprint. {@code finetune train} with {@code train.feature_store} reads the features back instead of
 * computing them, and refuses a store whose key differs, naming what differs.
 *
 * <p>The features are computed by the same call the in-memory cache uses ({@link FineTuner#prefixFeatures}: the
 * folded, guarded prefix), so a store read back equals the in-memory cache bit for bit. Plain Parquet, readable by
 * Spark, pandas or DuckDB; uncompressed, since float32 activations hardly compress.
 */
public final class FeatureStore {
    public static final String MANIFEST = "manifest.json";
    static final MessageType SCHEMA = MessageTypeParser.parseMessageType("message features {"
            + " required binary path (STRING); required int32 label; required binary split (STRING);"
            + " required int32 index; required binary feature; }");
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    private FeatureStore() {}

    /** What one split holds. */
    public record SplitInfo(String split, int rows, long bytes) {}

    /**
     * The key the features of stages {@code [0, toStage)} of {@code ft} on {@code data} are computed under, as
     * ordered (field, value) pairs.
     */
    public static Map<String, Object> key(FineTuner ft, TrainingData data, int toStage) {
        Network model = ft.model();
        Map<String, Object> k = new LinkedHashMap<>();
        k.put("arch", model.arch().configName());
        k.put("cut", model.stageNames().get(toStage - 1));
        k.put("enters_at_stage", toStage);
        k.put("prefix_weights_sha256", prefixDigest(model, toStage));
        if (ft.prefixPrecision() != dev.finetune.model.Precision.FP32) {
            // Only when not float32, so that every float32 store written before this field existed keeps its key.
            k.put("precision", ft.prefixPrecision().configName());
        }
        k.put("preprocessing", data.transforms().toString());
        k.put("train_data", data.train().fingerprint());
        k.put("val_data", data.val() == null ? "" : data.val().fingerprint());
        long perImage = model.stageInputElements(toStage, data.transforms().imageSize());
        k.put("feature_elements", perImage);
        return k;
    }

    /**
     * SHA-256 over the names and float32 values of every tensor (parameters, BN buffers) in stages before
     * {@code toStage}.
     */
    static String prefixDigest(Network model, int toStage) {
        try {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            TreeMap<String, ai.djl.nn.Parameter> sorted = new TreeMap<>(model.namedTensors());
            for (Map.Entry<String, ai.djl.nn.Parameter> e : sorted.entrySet()) {
                if (model.stageIndexOf(e.getKey()) >= toStage) {
                    continue;
                }
                md.update(e.getKey().getBytes(StandardCharsets.UTF_8));
                md.update(e.getValue().getArray().toByteArray());
            }
            return HexFormat.of().formatHex(md.digest());
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /**
     * Computes stages {@code [0, toStage)} for every training and validation image (no augmentation, in data set
     * order) and writes them to {@code dir}, with the manifest last: a folder without a manifest is not a store.
     */
    public static List<SplitInfo> write(FineTuner ft, TrainingData data, int toStage, int batchSize, Path dir) {
        List<SplitInfo> splits = new ArrayList<>();
        try {
            Files.createDirectories(dir);
            Files.deleteIfExists(dir.resolve(MANIFEST));
        } catch (IOException e) {
            throw new FinetuneException(ErrorKind.OUTPUT, "cannot write the feature store " + dir + ": "
                    + e.getMessage(), e);
        }
        splits.add(writeSplit(ft, data, data.train(), "train", toStage, batchSize, dir));
        if (data.val() != null && data.val().size() > 0) {
            splits.add(writeSplit(ft, data, data.val(), "val", toStage, batchSize, dir));
        }
        writeManifest(dir, ft, data, toStage, splits, ".parquet");
        return splits;
    }

    /**
     * Writes {@code manifest.json} for splits already in {@code dir}: {@code <split>.parquet} files
     * ({@code suffix} ".parquet") or {@code <split>/} folders of part files ({@code suffix} "/", as Spark writes).
     */
    public static void writeManifest(Path dir, FineTuner ft, TrainingData data, int toStage, List<SplitInfo> splits,
            String suffix) {
        Map<String, Object> manifest = new LinkedHashMap<>();
        manifest.put("format", "finetune-feature-store/1");
        manifest.put("toolkit", Versions.toolkit());
        manifest.put("key", key(ft, data, toStage));
        manifest.put("feature_shape", shapeOf(ft, data, toStage));
        manifest.put("dtype", "float32-le");
        List<Map<String, Object>> files = new ArrayList<>();
        for (SplitInfo s : splits) {
            files.add(Map.of("split", s.split(), "file", s.split() + suffix, "rows", s.rows()));
        }
        manifest.put("splits", files);
        manifest.put("class_names", data.classNames());
        AtomicFiles.write(dir.resolve(MANIFEST), out -> out.write(JSON.writeValueAsBytes(manifest)));
    }

    /** Row {@code i} of a batch's features ({@code per} floats a row) as the store keeps it: little-endian float32. */
    public static byte[] rowBytes(float[] values, int i, int per) {
        ByteBuffer bytes = ByteBuffer.allocate(per * 4).order(ByteOrder.LITTLE_ENDIAN);
        bytes.asFloatBuffer().put(values, i * per, per);
        return bytes.array();
    }

    /**
     * The Parquet files of one split as the manifest names them: {@code <split>.parquet}, or the sorted part files of
     * {@code <split>/} (a Spark store); a stale file or folder of the other kind is not read.
     */
    static List<Path> splitFiles(Path dir, String split, JsonNode manifest) throws IOException {
        String entry = split + ".parquet";
        for (JsonNode s : manifest.path("splits")) {
            if (split.equals(s.path("split").asText())) {
                entry = s.path("file").asText(entry);
            }
        }
        if (entry.endsWith("/")) {
            try (var parts = Files.list(dir.resolve(split))) {
                return parts.filter(p -> p.getFileName().toString().endsWith(".parquet")).sorted().toList();
            }
        }
        if (!entry.equals(split + ".parquet")) {
            throw new IOException("the manifest names '" + entry + "' for " + split + "; expected " + split
                    + ".parquet or " + split + "/");
        }
        return List.of(dir.resolve(entry));
    }

    private static List<Long> shapeOf(FineTuner ft, TrainingData data, int toStage) {
        int side = data.transforms().imageSize();
        Shape s = ft.model().stageInputShape(toStage, new Shape(1, 3, side, side));
        List<Long> out = new ArrayList<>();
        for (int i = 1; i < s.dimension(); i++) {
            out.add(s.get(i));
        }
        return out;
    }

    private static SplitInfo writeSplit(FineTuner ft, TrainingData data, ImageDataset dataset, String split,
            int toStage, int batchSize, Path dir) {
        Path file = dir.resolve(split + ".parquet");
        Path tmp = dir.resolve("." + split + ".parquet.tmp");
        try {
            Files.deleteIfExists(tmp);
            SimpleGroupFactory groups = new SimpleGroupFactory(SCHEMA);
            int[] rows = {0};
            try (ParquetWriter<Group> w = ExampleParquetWriter.builder(new LocalOutputFile(tmp))
                    .withConf(new PlainParquetConfiguration()).withType(SCHEMA)
                    .withCompressionCodec(CompressionCodecName.UNCOMPRESSED).build();
                    NDManager m = ft.manager().newSubManager()) {
                FeatureCache.forEachPrefixBatch(ft, data, dataset, toStage, batchSize, m, (f, b) -> {
                    float[] values = f.toFloatArray();
                    long[] labels = b.labels().toLongArray();
                    int[] index = b.sampleIndices();
                    int per = values.length / index.length;
                    for (int i = 0; i < index.length; i++) {
                        w.write(groups.newGroup()
                                .append("path", dataset.samples().get(index[i]).source())
                                .append("label", (int) labels[i])
                                .append("split", split)
                                .append("index", index[i])
                                .append("feature", Binary.fromConstantByteArray(rowBytes(values, i, per))));
                        rows[0]++;
                    }
                });
            } catch (java.io.UncheckedIOException e) {
                throw e.getCause();
            }
            Files.move(tmp, file, java.nio.file.StandardCopyOption.REPLACE_EXISTING,
                    java.nio.file.StandardCopyOption.ATOMIC_MOVE);
            return new SplitInfo(split, rows[0], Files.size(file));
        } catch (IOException e) {
            throw new FinetuneException(ErrorKind.OUTPUT, "cannot write " + file + ": " + e.getMessage(), e);
        }
    }

    /**
     * Reads the store at {@code dir} as caches for training ({@code [0]}) and validation ({@code [1]}, null without a
     * validation split), after checking that its key equals the one {@code ft} and {@code data} give for a prefix
     * ending before {@code toStage}.
     *
     * @throws ConfigException naming {@code train.feature_store} and every key field that differs
     * @throws FinetuneException {@link ErrorKind#DATA} when the store's files are missing, malformed or inconsistent
     */
    public static FeatureCache[] load(Path dir, FineTuner ft, TrainingData data, int toStage) {
        Map<String, Object> expected = checkKey(dir, ft, data, toStage);
        JsonNode manifest = readManifest(dir);
        long per = (Long) expected.get("feature_elements");
        int side = data.transforms().imageSize();
        Shape one = ft.model().stageInputShape(toStage, new Shape(1, 3, side, side));
        FeatureCache train = readSplit(dir, manifest, "train", data.train(), per, one, ft, toStage);
        FeatureCache val = data.val() == null || data.val().size() == 0 ? null
                : readSplit(dir, manifest, "val", data.val(), per, one, ft, toStage);
        return new FeatureCache[] {train, val};
    }

    /**
     * Checks that the store at {@code dir} was computed under the key {@code ft} and {@code data} give for a prefix
     * ending before {@code toStage}, without reading its features; returns that key.
     *
     * @throws ConfigException naming {@code train.feature_store} and every key field that differs
     * @throws FinetuneException {@link ErrorKind#DATA} when the manifest is unreadable
     */
    public static Map<String, Object> checkKey(Path dir, FineTuner ft, TrainingData data, int toStage) {
        Path manifestFile = dir.resolve(MANIFEST);
        if (!Files.isRegularFile(manifestFile)) {
            throw new ConfigException("train.feature_store", dir + " is not a feature store (no " + MANIFEST
                    + "); write one with: finetune features -c CONFIG --out " + dir);
        }
        JsonNode manifest = readManifest(dir);
        Map<String, Object> expected = key(ft, data, toStage);
        JsonNode stored = manifest.path("key");
        List<String> differs = new ArrayList<>();
        for (Map.Entry<String, Object> e : expected.entrySet()) {
            JsonNode v = stored.get(e.getKey());
            String have = v == null ? "(missing)" : v.asText();
            if (!have.equals(String.valueOf(e.getValue()))) {
                String[] w = window(have, String.valueOf(e.getValue()));
                differs.add(e.getKey() + ": store has " + w[0] + ", this run needs " + w[1]);
            }
        }
        if (!differs.isEmpty()) {
            throw new ConfigException("train.feature_store", dir + " was computed under a different key ("
                    + String.join("; ", differs) + "); write it again for this config with: finetune features -c"
                    + " CONFIG --out " + dir + ", or drop train.feature_store");
        }
        return expected;
    }

    private static JsonNode readManifest(Path dir) {
        Path manifestFile = dir.resolve(MANIFEST);
        try {
            if (Files.size(manifestFile) > 1 << 20) {
                throw new IOException("larger than 1 MiB");
            }
            return JSON.readTree(manifestFile.toFile());
        } catch (IOException e) {
            throw new FinetuneException(ErrorKind.DATA, "feature store manifest " + manifestFile + " is unreadable: "
                    + e.getMessage() + "; write the store again with finetune features", e);
        }
    }

    /** Both values, cut to a window around where they first differ when they are long. */
    private static String[] window(String a, String b) {
        if (a.length() <= 80 && b.length() <= 80) {
            return new String[] {"'" + a + "'", "'" + b + "'"};
        }
        int i = 0;
        while (i < a.length() && i < b.length() && a.charAt(i) == b.charAt(i)) {
            i++;
        }
        int from = Math.max(0, i - 20);
        return new String[] {cut(a, from), cut(b, from)};
    }

    private static String cut(String s, int from) {
        int to = Math.min(s.length(), from + 60);
        return "'" + (from > 0 ? "..." : "") + s.substring(Math.min(from, s.length()), to)
                + (to < s.length() ? "..." : "") + "'";
    }

    /**
     * One split as a cache: the Parquet rows are streamed into a temporary file of float32 rows (one row in memory at a
     * time), which the cache maps; the heap holds only labels and the index. Deleted when the cache closes.
     */
    private static FeatureCache readSplit(Path dir, JsonNode manifest, String split, ImageDataset dataset, long per,
            Shape one, FineTuner ft, int toStage) {
        int n = dataset.size();
        long[] labels = new long[n];
        int[] rowOf = new int[n];
        Arrays.fill(rowOf, -1);
        int rows = 0;
        List<Path> files;
        try {
            files = splitFiles(dir, split, manifest);
        } catch (IOException e) {
            throw new FinetuneException(ErrorKind.DATA, "cannot list " + dir.resolve(split) + ": " + e.getMessage(), e);
        }
        Path raw;
        try {
            raw = Files.createTempFile("finetune-store-" + split + "-", ".f32");
        } catch (IOException e) {
            throw new FinetuneException(ErrorKind.OUTPUT, "cannot create a temporary file for the feature store: "
                    + e.getMessage(), e);
        }
        boolean ok = false;
        try (java.nio.channels.FileChannel out = java.nio.channels.FileChannel.open(raw,
                java.nio.file.StandardOpenOption.WRITE)) {
            for (Path file : files) {
                try (ParquetReader<Group> r = new ParquetReader.Builder<Group>(new LocalInputFile(file),
                        new PlainParquetConfiguration()) {
                    @Override
                    protected ReadSupport<Group> getReadSupport() {
                        return new GroupReadSupport();
                    }
                }.build()) {
                    Group g;
                    while ((g = r.read()) != null) {
                        int index = g.getInteger("index", 0);
                        if (index < 0 || index >= n || rowOf[index] >= 0 || rows >= n) {
                            throw new FinetuneException(ErrorKind.DATA, file + ": row " + rows + " names data set"
                                    + " index " + index + ", outside the " + n + " images of " + split
                                    + " or repeated");
                        }
                        byte[] bytes = g.getBinary("feature", 0).getBytes();
                        if (bytes.length != per * 4) {
                            throw new FinetuneException(ErrorKind.DATA, file + ": row " + rows + " holds "
                                    + bytes.length + " feature bytes, the manifest's shape needs " + per * 4);
                        }
                        ByteBuffer b = ByteBuffer.wrap(bytes);
                        long at = (long) rows * per * 4;
                        while (b.hasRemaining()) {
                            at += out.write(b, at);
                        }
                        labels[rows] = g.getInteger("label", 0);
                        rowOf[index] = rows;
                        rows++;
                    }
                } catch (IOException | RuntimeException e) {
                    if (e instanceof FinetuneException fe) {
                        throw fe;
                    }
                    throw new FinetuneException(ErrorKind.DATA, "feature store file " + file + " is unreadable: "
                            + e.getMessage() + "; write the store again with finetune features", e);
                }
            }
            ok = true;
        } catch (IOException e) {
            throw new FinetuneException(ErrorKind.OUTPUT, "cannot write " + raw + ": " + e.getMessage(), e);
        } finally {
            if (!ok) {
                deleteQuietly(raw);
            }
        }
        long[] dims = new long[one.dimension() - 1];
        for (int i = 0; i < dims.length; i++) {
            dims[i] = one.get(i + 1);
        }
        NDManager m = ft.manager().newSubManager();
        try {
            Path file = raw;
            return FeatureCache.mapped(m, raw, new Shape(dims), Arrays.copyOf(labels, rows), toStage, "store " + dir,
                    rowOf, () -> deleteQuietly(file));
        } catch (RuntimeException e) {
            m.close();
            deleteQuietly(raw);
            throw e;
        }
    }

    private static void deleteQuietly(Path p) {
        try {
            Files.deleteIfExists(p);
        } catch (IOException e) {
            p.toFile().deleteOnExit();
        }
    }
}
