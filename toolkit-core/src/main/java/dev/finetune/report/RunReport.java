package dev.finetune.report;

import ai.djl.ndarray.NDArray;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.finetune.ErrorKind;
import dev.finetune.FinetuneException;
import dev.finetune.Versions;
import dev.finetune.config.ConfigLoader;
import dev.finetune.data.BatchLoader;
import dev.finetune.data.ImageDataset;
import dev.finetune.data.LoadedBatch;
import dev.finetune.data.RgbImage;
import dev.finetune.engine.Engines;
import dev.finetune.inspect.InspectReport;
import dev.finetune.inspect.ModelInspector;
import dev.finetune.io.AtomicFiles;
import dev.finetune.run.Assembler;
import dev.finetune.run.TrainingCheckpoint;
import dev.finetune.train.FineTuner;
import dev.finetune.train.GradualUnfreezing;
import dev.finetune.train.TrainingData;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Comparator;
import java.util.List;
import java.util.PriorityQueue;
import javax.imageio.ImageIO;

/**
 * {@code report.html}: one self-contained page per run that opens offline (inline SVG charts and PNG thumbnails, CSS
 * and no script): training curves; the confusion matrix, per-class precision/recall/F1/support, the most confidently
 * wrong validation images and a reliability diagram with the expected calibration error, all of the best checkpoint
 * on the validation set; the freeze map (every tensor by stage, coloured by its state, with the backward frontier);
 * the resolved config and the versions.
 *
 * <p>Built from the run folder alone (its config, metrics, run record and best checkpoint) plus the validation data
 * the config names, so {@code finetune report RUN_DIR} rebuilds it at any time, and training writes it at the end.
 */
public final class RunReport {
    public static final String FILE = "report.html";
    /** Images in the gallery of confident mistakes. */
    static final int GALLERY = 12;
    static final int BINS = 10;
    private static final ObjectMapper JSON = new ObjectMapper();

    private RunReport() {}

    /** The best checkpoint's predictions on the validation set. */
    record Evaluation(int[] label, int[] predicted, float[] confidence, long[][] confusion, List<Mistake> mistakes) {}

    /** A confident mistake: the sample, its true and predicted classes with their probabilities, its eval crop. */
    record Mistake(int sample, String source, int label, int predicted, float pPredicted, float pTrue, String png) {}

    /** Writes {@code runDir/report.html} and returns its path, opening the data its config names. */
    public static Path write(Path runDir) {
        return write(runDir, null);
    }

    /**
     * {@link #write(Path)} with the run's data already open ({@code finetune train} passes the data it trained on,
     * so the folders or IDX files are not indexed twice); null opens it from the saved config.
     */
    public static Path write(Path runDir, TrainingData openData) {
        Path root = runDir.toAbsolutePath();
        if (!Files.isRegularFile(root.resolve("config.yaml")) || !Files.isRegularFile(root.resolve("run.json"))) {
            throw new FinetuneException(ErrorKind.USAGE, root + " is not a run folder (no config.yaml and run.json);"
                    + " give the folder `finetune train` wrote");
        }
        Path best = root.resolve("checkpoints").resolve("best.safetensors");
        if (!Files.isRegularFile(best)) {
            best = root.resolve("checkpoints").resolve("last.safetensors");
        }
        if (!Files.isRegularFile(best)) {
            throw new FinetuneException(ErrorKind.CHECKPOINT, root + " has no checkpoint yet (checkpoints/best"
                    + ".safetensors); the report needs at least one finished epoch — resume the run with"
                    + " `finetune train --resume " + root + "`");
        }
        JsonNode run = readJson(root.resolve("run.json"));
        JsonNode summary = Files.exists(root.resolve("summary.json")) ? readJson(root.resolve("summary.json")) : null;
        List<JsonNode> epochs = readJsonLines(root.resolve("metrics.jsonl"));
        ConfigLoader.Loaded config = ConfigLoader.load(root.resolve("config.yaml"), List.of());
        TrainingData data = openData != null ? openData : Assembler.data(config);
        TrainingCheckpoint.Loaded ckpt = TrainingCheckpoint.read(best);
        int bestEpoch = ckpt.meta().state().epochsCompleted();
        String page;
        Engines.pytorch();
        try (FineTuner ft = Assembler.resumedFineTuner(config, ckpt, data)) {
            GradualUnfreezing.applyUpTo(ft, Assembler.unfreezeSteps(config.config().train()), bestEpoch);
            Evaluation eval = data.val() == null || data.val().size() == 0 ? null
                    : evaluate(ft, data, config.config().train().batchSize());
            int size = config.config().data() == null ? 224 : config.config().data().imageSize();
            boolean augment = config.config().data() != null && config.config().data().randomTraining()
                    || config.config().train().mixup() != null;
            InspectReport inspect = ModelInspector.inspect(config.config().name(), ft.model(), ft.plan(),
                    config.config().optimizer().toSettings(), ft.addedGroups(), size, augment, null);
            List<Svg.MapTensor> tensors = new ArrayList<>();
            for (InspectReport.Row r : inspect.rows()) {
                String state = r.kind().equals("buffer")
                        ? ("FROZEN_STATS".equals(r.bnMode()) ? "frozen statistics" : "statistics updating")
                        : (r.trainable() ? "trainable" : "frozen");
                tensors.add(new Svg.MapTensor(r.name(), ft.model().stageOf(r.name()), state, r.count(), r.shape()));
            }
            page = Html.page(new Html.Inputs(root, run, summary, epochs, data.classNames(), bestEpoch, eval, inspect,
                    tensors, ft.model().arch().configName(), readText(root.resolve("config.yaml")), Versions.all()));
        }
        Path out = root.resolve(FILE);
        byte[] bytes = page.getBytes(StandardCharsets.UTF_8);
        AtomicFiles.write(out, o -> o.write(bytes));
        return out;
    }

    /** Softmax probabilities of every validation image under the best weights (eval mode, no graph). */
    static Evaluation evaluate(FineTuner ft, TrainingData data, int batchSize) {
        int n = data.val().size();
        int classes = data.numClasses();
        int[] label = new int[n];
        int[] predicted = new int[n];
        float[] confidence = new float[n];
        boolean[] seen = new boolean[n];
        long[][] confusion = new long[classes][classes];
        // The GALLERY most confident mistakes: a min-heap on the predicted class's probability.
        PriorityQueue<float[]> worst = new PriorityQueue<>(Comparator.comparingDouble(a -> a[0]));
        try (Engines.NoGrad g = Engines.noGrad();
                BatchLoader loader = data.valLoader(ft.manager(), batchSize)) {
            while (loader.hasNext()) {
                try (LoadedBatch b = loader.next()) {
                    NDArray logits = ft.model().inferLogits(ft.parameterStore(), b.images());
                    logits.attach(b.manager());
                    float[] p = logits.softmax(1).toFloatArray();
                    long[] y = b.labels().toLongArray();
                    int[] idx = b.sampleIndices();
                    for (int i = 0; i < idx.length; i++) {
                        int best = 0;
                        for (int c = 1; c < classes; c++) {
                            if (p[i * classes + c] > p[i * classes + best]) {
                                best = c;
                            }
                        }
                        int s = idx[i];
                        label[s] = (int) y[i];
                        predicted[s] = best;
                        confidence[s] = p[i * classes + best];
                        seen[s] = true;
                        confusion[label[s]][best]++;
                        if (best != label[s]) {
                            worst.add(new float[] {confidence[s], s, p[i * classes + label[s]]});
                            if (worst.size() > GALLERY) {
                                worst.poll();
                            }
                        }
                    }
                }
            }
        }
        // Images skipped as unreadable (data.on_bad_image: skip) have no prediction.
        int kept = 0;
        for (boolean b : seen) {
            kept += b ? 1 : 0;
        }
        int[] l = new int[kept];
        int[] pr = new int[kept];
        float[] cf = new float[kept];
        for (int i = 0, j = 0; i < n; i++) {
            if (seen[i]) {
                l[j] = label[i];
                pr[j] = predicted[i];
                cf[j++] = confidence[i];
            }
        }
        List<float[]> ordered = new ArrayList<>(worst);
        ordered.sort(Comparator.comparingDouble((float[] a) -> a[0]).reversed());
        List<Mistake> mistakes = new ArrayList<>();
        var transforms = data.evalOptions(batchSize).transforms();
        for (float[] w : ordered) {
            int s = (int) w[1];
            ImageDataset.Sample sample = data.val().samples().get(s);
            RgbImage crop = transforms.evalImage(sample.decode());
            mistakes.add(new Mistake(s, sample.source(), label[s], predicted[s], w[0], w[2], png(crop)));
        }
        return new Evaluation(l, pr, cf, confusion, mistakes);
    }

    static String png(RgbImage image) {
        BufferedImage img = new BufferedImage(image.width(), image.height(), BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < image.height(); y++) {
            for (int x = 0; x < image.width(); x++) {
                img.setRGB(x, y, image.get(x, y, 0) << 16 | image.get(x, y, 1) << 8 | image.get(x, y, 2));
            }
        }
        try {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            ImageIO.write(img, "png", out);
            return Base64.getEncoder().encodeToString(out.toByteArray());
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    private static JsonNode readJson(Path f) {
        try {
            return JSON.readTree(f.toFile());
        } catch (IOException e) {
            throw new FinetuneException(ErrorKind.CHECKPOINT, "cannot read " + f + ": " + e.getMessage(), e);
        }
    }

    private static List<JsonNode> readJsonLines(Path f) {
        List<JsonNode> out = new ArrayList<>();
        if (!Files.exists(f)) {
            return out;
        }
        try {
            for (String line : Files.readAllLines(f)) {
                if (!line.isBlank()) {
                    out.add(JSON.readTree(line));
                }
            }
        } catch (IOException e) {
            throw new FinetuneException(ErrorKind.CHECKPOINT, "cannot read " + f + ": " + e.getMessage(), e);
        }
        return out;
    }

    private static String readText(Path f) {
        try {
            return Files.readString(f);
        } catch (IOException e) {
            throw new FinetuneException(ErrorKind.CHECKPOINT, "cannot read " + f + ": " + e.getMessage(), e);
        }
    }
}
