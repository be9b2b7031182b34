package dev.finetune.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.finetune.ErrorKind;
import dev.finetune.FinetuneException;
import dev.finetune.checkpoint.HostTensor;
import dev.finetune.config.ConfigLoader;
import dev.finetune.data.BatchLoader;
import dev.finetune.data.LoadedBatch;
import dev.finetune.run.RunSummary;
import dev.finetune.run.TrainJob;
import dev.finetune.run.TrainingCheckpoint;
import dev.finetune.testing.TorchReference;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Training trajectories equal PyTorch's: each shipped freeze policy, and a gradual unfreeze with {@code lr_mult}, run
 * exactly as {@code finetune train} runs them ({@link TrainJob}, defaults on: BN folding, the feature cache where
 * eligible), against the same steps replayed in PyTorch 1.13 by {@code scripts/reference/trajectory_reference.py} from
 * the same initial weights, images and batch order. Loss per step and every tensor of the final state_dict within
 * {@code 1e-4 * max(1, max|ref|)}. One run is interrupted mid-epoch and resumed, and must still follow PyTorch.
 */
class TrajectoryParityTest {
    private static final double TOL = 1e-4;
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final List<String> POLICIES = List.of("linear-probe", "last-stage", "last-two-stages", "full",
            "full-frozen-bn", "bn-train-frozen-backbone");

    @TempDir
    static Path tmp;

    private static final Map<String, Run> RUNS = new LinkedHashMap<>();
    private static Path reference;
    private static Path data;

    /** One Java run: what it did, step by step, and where its checkpoint is. */
    private record Run(String name, Path dir, Recorder recorder, RunSummary summary) {}

    @BeforeAll
    static void trainEverythingThenReplayInPyTorch() throws Exception {
        Path in = Files.createDirectories(tmp.resolve("in"));
        Path repo = TorchReference.repoRoot();
        data = subset(repo.resolve("data/fashion-mnist-b"), tmp.resolve("data"), 10, 4);
        Files.copy(repo.resolve("models/resnet18-fmnist-a.safetensors"), in.resolve("embedded.safetensors"));
        for (String p : POLICIES) {
            train(p, "policies/" + p + ".yaml", "{epochs: 1, batch_size: 10, seed: 0}", null, in);
        }
        train("unfreeze", "policies/linear-probe.yaml", "{epochs: 2, batch_size: 16, seed: 1,"
                + " max_steps_per_epoch: 3, unfreeze: [{at_epoch: 2, match: layer4, lr_mult: 0.1}]}", null, in);
        train("resumed-last-stage", "policies/last-stage.yaml",
                "{epochs: 2, batch_size: 16, seed: 2, max_steps_per_epoch: 3}", 2, in);
        reference = tmp.resolve("torch");
        long t0 = System.nanoTime();
        TorchReference.runPython(repo.resolve("scripts/reference/trajectory_reference.py").toString(),
                in.toString(), reference.toString());
        System.out.printf("PyTorch replayed the runs in %.1f s%n", (System.nanoTime() - t0) / 1e9);
    }

    /** The first {@code train} and {@code val} images of each class of an image folder, copied. */
    private static Path subset(Path from, Path to, int train, int val) throws IOException {
        for (String split : List.of("train", "val")) {
            try (var classes = Files.list(from.resolve(split))) {
                for (Path c : classes.sorted().toList()) {
                    Path dest = Files.createDirectories(to.resolve(split).resolve(c.getFileName()));
                    try (var files = Files.list(c)) {
                        for (Path f : files.sorted().limit(split.equals("train") ? train : val).toList()) {
                            Files.copy(f, dest.resolve(f.getFileName()));
                        }
                    }
                }
            }
        }
        return to;
    }

    private static void train(String name, String policy, String trainYaml, Integer interruptAfter, Path in)
            throws IOException {
        long t0 = System.nanoTime();
        Path repo = TorchReference.repoRoot();
        String yaml = "name: traj-" + name + "\n"
                + "model: {arch: resnet18, checkpoint: " + repo.resolve("models/resnet18-fmnist-a.safetensors")
                + ", head: {classes: auto}}\n"
                + "freeze: " + repo.resolve("configs").resolve(policy) + "\n"
                + "optimizer: {name: sgd, lr: 0.01, momentum: 0.9}\n"
                + "data: {root: " + data + ", image_size: 32, resize: 32,"
                + " augment: false}\n"
                + "train: " + trainYaml + "\n";
        Path cfg = tmp.resolve(name + ".yaml");
        Files.writeString(cfg, yaml);
        Path runDir = tmp.resolve("runs").resolve(name);
        Recorder rec = new Recorder(in, interruptAfter);
        TrainJob.Result result;
        if (interruptAfter == null) {
            result = TrainJob.start(ConfigLoader.load(cfg, List.of()), runDir, List.of(rec));
        } else {
            FinetuneException stop = assertThrows(FinetuneException.class,
                    () -> TrainJob.start(ConfigLoader.load(cfg, List.of()), runDir, List.of(rec)));
            assertEquals(ErrorKind.INTERRUPTED, stop.kind(), stop.getMessage());
            StopSignal.clear();
            result = TrainJob.resume(runDir, List.of(), List.of(rec));
        }
        RUNS.put(name, new Run(name, runDir, rec, result.summary()));
        System.out.printf("trained %s in %.1f s%n", name, (System.nanoTime() - t0) / 1e9);
        Map<String, Object> run = new LinkedHashMap<>();
        run.put("policy", policy.substring("policies/".length(), policy.length() - ".yaml".length()));
        run.put("classes", rec.classes);
        run.put("fc_weight", rec.fcWeight);
        run.put("fc_bias", rec.fcBias);
        run.put("lr", 0.01);
        run.put("momentum", 0.9);
        run.put("steps", rec.steps);
        run.put("unfreeze", name.equals("unfreeze")
                ? List.of(Map.of("at_epoch", 2, "modules", List.of("layer4"), "lr_mult", 0.1)) : List.of());
        JSON.writeValue(in.resolve("run-" + name + ".json").toFile(), run);
    }

    @Test
    void everyPolicyFollowsPyTorch() throws IOException {
        List<String> failures = new ArrayList<>();
        for (Run r : RUNS.values()) {
            failures.addAll(compare(r));
        }
        assertTrue(failures.isEmpty(), String.join("\n", failures));
    }

    @Test
    void defaultsWereOnWhereEligible() {
        for (String p : List.of("linear-probe", "last-stage", "last-two-stages")) {
            assertTrue(RUNS.get(p).summary().featureCacheUsed(), p + " trains on the cache");
            assertTrue(RUNS.get(p).recorder().foldedStages > 0, p + " runs a folded prefix");
        }
        for (String p : List.of("full", "full-frozen-bn", "bn-train-frozen-backbone")) {
            assertFalse(RUNS.get(p).summary().featureCacheUsed(), p + ": nothing to cache");
        }
        assertEquals(6, RUNS.get("unfreeze").recorder().steps.size());
        assertEquals(6, RUNS.get("resumed-last-stage").recorder().steps.size(), "2 steps, interrupt, 4 steps");
    }

    @Test
    void unfrozenLayerHasItsOwnGroupInTheMetrics() throws IOException {
        List<String> lines = Files.readAllLines(RUNS.get("unfreeze").dir().resolve("metrics.jsonl"));
        JsonNode epoch2 = JSON.readTree(lines.get(1)).get("lr_by_group");
        assertEquals(0.01, epoch2.get("base").asDouble(), 1e-12);
        assertEquals(0.001, epoch2.get("train.unfreeze[0]").asDouble(), 1e-12, epoch2.toString());
        assertTrue(JSON.readTree(lines.get(0)).get("lr_by_group").get("train.unfreeze[0]") == null);
    }

    private static List<String> compare(Run r) throws IOException {
        Path d = reference.resolve(r.name());
        JsonNode result = JSON.readTree(d.resolve("result.json").toFile());
        List<String> failures = new ArrayList<>();
        StringBuilder report = new StringBuilder("== " + r.name() + ": loss per step (ours / torch):");
        JsonNode losses = result.get("losses");
        assertEquals(r.recorder().steps.size(), losses.size(), r.name() + ": step count");
        for (int i = 0; i < losses.size(); i++) {
            double ours = ((Number) r.recorder().steps.get(i).get("loss")).doubleValue();
            double ref = losses.get(i).asDouble();
            report.append(String.format(" %.6f/%.6f", ours, ref));
            if (!(Math.abs(ours - ref) <= TOL * Math.max(1, Math.abs(ref)))) {
                failures.add(r.name() + " step " + (i + 1) + ": loss " + ours + " vs PyTorch " + ref);
            }
        }
        Map<String, HostTensor> ours = TrainingCheckpoint.read(r.dir().resolve("checkpoints/last.safetensors"))
                .checkpoint().tensors();
        double worst = 0;
        String worstName = "";
        var it = result.get("tensors").fields();
        int compared = 0;
        while (it.hasNext()) {
            String name = it.next().getKey();
            float[] ref = readF32(d.resolve(name + ".f32"));
            HostTensor t = ours.get(name);
            if (t == null) {
                failures.add(r.name() + ": " + name + " missing from our checkpoint");
                continue;
            }
            float[] a = t.data();
            assertEquals(ref.length, a.length, name);
            double scale = 1;
            double diff = 0;
            for (int i = 0; i < a.length; i++) {
                scale = Math.max(scale, Math.abs(ref[i]));
                diff = Math.max(diff, Math.abs(a[i] - ref[i]));
            }
            compared++;
            if (diff / scale > worst) {
                worst = diff / scale;
                worstName = name;
            }
            if (!(diff <= TOL * scale)) {
                failures.add(String.format("%s: %s differs by %.3g (scale %.3g)", r.name(), name, diff, scale));
            }
        }
        // Every tensor is accounted for: compared with PyTorch, or verified bit-identical to its initial value by the
        // run itself (which fails if one moved).
        int frozen = r.summary().frozenTensorsBitIdentical();
        long model = ours.keySet().stream()
                .filter(k -> !k.startsWith("optimizer.") && !k.endsWith("num_batches_tracked")).count();
        if (compared + frozen != model) {
            failures.add(r.name() + ": " + compared + " tensors compared + " + frozen + " verified frozen != "
                    + model + " state_dict tensors (without num_batches_tracked)");
        }
        report.append(String.format("%n   %d tensors that training changes, worst relative difference %.2e (%s);"
                + " frozen tensors bit-identical: %s", compared, worst, worstName,
                r.summary().frozenTensorsBitIdentical()));
        System.out.println(report);
        return failures;
    }

    private static float[] readF32(Path f) throws IOException {
        byte[] b = Files.readAllBytes(f);
        float[] out = new float[b.length / 4];
        ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(out);
        return out;
    }

    /**
     * Records what the real loop does: the new head's initial values, the batch order, each step's loss and lr; writes
     * the preprocessed images once; interrupts (as Ctrl-C would) after a given step.
     */
    private static final class Recorder implements TrainingListener {
        final Path in;
        final Integer interruptAfter;
        final List<Map<String, Object>> steps = new ArrayList<>();
        float[] fcWeight;
        float[] fcBias;
        int classes;
        int foldedStages;
        int[][] plan;
        int epoch;

        Recorder(Path in, Integer interruptAfter) {
            this.in = in;
            this.interruptAfter = interruptAfter;
        }

        @Override
        public void onTrainStart(TrainContext ctx) {
            foldedStages = Math.max(foldedStages, ctx.fineTuner().foldedStages());
            if (fcWeight == null) {
                fcWeight = ctx.fineTuner().model().head().weight().getArray().toFloatArray();
                fcBias = ctx.fineTuner().model().head().bias().getArray().toFloatArray();
                classes = ctx.fineTuner().model().numClasses();
            }
            if (!Files.exists(in.resolve("images.f32"))) {
                dumpImages(ctx);
            }
        }

        @Override
        public void onEpochStart(TrainContext ctx, int epoch, int batches) {
            this.epoch = epoch;
            var tc = ctx.settings();
            plan = BatchLoader.plan(ctx.data().train().size(), ctx.data().trainOptions(tc.batchSize(), tc.seed()),
                    epoch - 1);
        }

        @Override
        public void onStep(TrainContext ctx, int batchInEpoch, int images, float loss, double lr) {
            foldedStages = Math.max(foldedStages, ctx.fineTuner().foldedStages());
            Map<String, Object> s = new LinkedHashMap<>();
            s.put("indices", plan[batchInEpoch - 1]);
            s.put("lr", lr);
            s.put("epoch", epoch);
            s.put("loss", (double) loss);
            steps.add(s);
            if (interruptAfter != null && steps.size() == interruptAfter) {
                StopSignal.request(ErrorKind.INTERRUPTED);
            }
        }

        private void dumpImages(TrainContext ctx) {
            FineTuner ft = ctx.fineTuner();
            List<float[]> chunks = new ArrayList<>();
            List<Long> shape = null;
            List<Float> labels = new ArrayList<>();
            try (NDManager m = ft.manager().newSubManager();
                    BatchLoader loader = new BatchLoader(ctx.data().train(), m, ctx.data().evalOptions(64), 0)) {
                while (loader.hasNext()) {
                    try (LoadedBatch b = loader.next()) {
                        NDArray x = b.images();
                        chunks.add(x.toFloatArray());
                        shape = List.of(x.getShape().get(1), x.getShape().get(2), x.getShape().get(3));
                        for (long l : b.labels().toLongArray()) {
                            labels.add((float) l);
                        }
                    }
                }
            }
            try {
                int n = labels.size();
                ByteBuffer buf = ByteBuffer.allocate(chunks.stream().mapToInt(c -> c.length).sum() * 4)
                        .order(ByteOrder.LITTLE_ENDIAN);
                for (float[] c : chunks) {
                    for (float v : c) {
                        buf.putFloat(v);
                    }
                }
                Files.write(in.resolve("images.f32"), buf.array());
                ByteBuffer lb = ByteBuffer.allocate(n * 4).order(ByteOrder.LITTLE_ENDIAN);
                labels.forEach(lb::putFloat);
                Files.write(in.resolve("labels.f32"), lb.array());
                JSON.writeValue(in.resolve("data.json").toFile(),
                        Map.of("images", List.of(n, shape.get(0), shape.get(1), shape.get(2))));
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        }
    }
}
