package dev.finetune.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.finetune.engine.Engines;
import dev.finetune.predict.TrainedModel;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The real commands on real images: the committed pretrained checkpoint fine-tuned on the committed Fashion-MNIST
 * subset, then evaluate, predict and export, with the export checked by Debian's torchvision.
 */
class CliEndToEndTest {
    @TempDir
    static Path tmp;

    static Path run;

    @BeforeAll
    static void train() throws Exception {
        Path cfg = Cli.config(tmp, "e2e", Cli.repo().resolve("configs/policies/linear-probe.yaml").toString(),
                "{epochs: 4, batch_size: 32, seed: 1}");
        run = tmp.resolve("run");
        Cli.Result r = Cli.run("train", "-c", cfg.toString(), "--run-dir", run.toString(), "--quiet");
        assertEquals(0, r.code(), r.err() + r.out());
        assertTrue(r.out().contains("epoch 4:"), r.out());
    }

    @Test
    void runDirectoryIsCompleteAndAccuracyIsFarAboveChance() throws Exception {
        for (String f : List.of("config.yaml", "run.json", "summary.json", "metrics.csv", "metrics.jsonl",
                "checkpoints/last.safetensors", "checkpoints/best.safetensors", "plots/curves.png",
                "plots/confusion.png")) {
            assertTrue(Files.size(run.resolve(f)) > 0, f + " missing or empty");
        }
        JsonNode summary = new ObjectMapper().readTree(run.resolve("summary.json").toFile());
        double top1 = summary.get("val_top1").asDouble();
        assertTrue(top1 > 0.6, "val top-1 " + top1 + " should be far above chance (0.2) for 5 classes");
        assertEquals(100, summary.get("frozen_tensors_bit_identical").asInt());
        assertTrue(summary.get("feature_cache_used").asBoolean());
        assertEquals(5, Files.readAllLines(run.resolve("metrics.csv")).size(), "header + 4 epochs");
        String cfg = Files.readString(run.resolve("config.yaml"));
        assertTrue(cfg.contains("fc.*"), "the resolved config inlines the policy file");
    }

    @Test
    void evaluateAndPredictReportNoGraphAndMemory() throws Exception {
        Cli.Result e = Cli.run("evaluate", "--checkpoint", run.toString(), "--data",
                Cli.repo().resolve("data/fashion-mnist-b").toString(), "--json");
        assertEquals(0, e.code(), e.err());
        JsonNode ej = new ObjectMapper().readTree(e.out());
        assertEquals(200, ej.get("images").asInt());
        assertTrue(ej.get("top1").asDouble() > 0.6);
        assertTrue(ej.get("peak_rss_bytes").asLong() > 0);
        // Folded by default behind the guard, which checked each input shape; --no-fold-bn runs the plain network
        // and gives the same figures.
        JsonNode fast = ej.get("fast_path");
        assertEquals(1, fast.size(), ej.toString());
        assertTrue(fast.get(0).get("in_use").asText().startsWith("folded"), fast.toString());
        assertTrue(fast.get(0).get("checks").size() >= 1, fast.toString());
        Cli.Result plain = Cli.run("evaluate", "--checkpoint", run.toString(), "--data",
                Cli.repo().resolve("data/fashion-mnist-b").toString(), "--json", "--no-fold-bn");
        assertEquals(0, plain.code(), plain.err());
        JsonNode pj = new ObjectMapper().readTree(plain.out());
        assertEquals(0, pj.get("fast_path").size(), pj.toString());
        assertEquals(pj.get("top1").asDouble(), ej.get("top1").asDouble());
        assertEquals(pj.get("loss").asDouble(), ej.get("loss").asDouble(), 1e-4);
        assertEquals(pj.get("confusion"), ej.get("confusion"));

        Path img = Cli.repo().resolve("data/fashion-mnist-b/val/bag/00018.png");
        Cli.Result p = Cli.run("predict", "--checkpoint", run.toString(), "--top-k", "3", "--json", img.toString());
        assertEquals(0, p.code(), p.err());
        JsonNode top = new ObjectMapper().readTree(p.out()).get("predictions").get(0).get("top");
        assertEquals(3, top.size());
        double sum = 0;
        for (JsonNode s : top) {
            sum += s.get("probability").asDouble();
        }
        assertTrue(sum <= 1.0 + 1e-6 && sum > 0.5, "top-3 probabilities sum to " + sum);
    }

    @Test
    void exportedPthLoadsInTorchvisionWithOurLogits() throws Exception {
        Path pth = tmp.resolve("model.pth");
        Cli.Result x = Cli.run("export", "--checkpoint", run.toString(), "--format", "pth", "--out", pth.toString());
        assertEquals(0, x.code(), x.err());
        assertTrue(Files.exists(tmp.resolve("model.pth.json")));
        Path inp = tmp.resolve("input.f32");
        Path logits = tmp.resolve("logits.f32");
        Engines.pytorch();
        try (TrainedModel m = TrainedModel.open(pth.toString(), "resnet18");
                NDManager nm = NDManager.newBaseManager();
                Engines.NoGrad g = Engines.noGrad()) {
            NDArray in = nm.randomNormal(new Shape(2, 3, 32, 32));
            NDArray out = m.model().forward(m.parameterStore(), new NDList(in), false).singletonOrThrow();
            Files.write(inp, le(in.toFloatArray()));
            Files.write(logits, le(out.toFloatArray()));
        }
        String py = Cli.python(Cli.repo().resolve("scripts/reference/check_export.py").toString(), pth.toString(),
                "5", inp.toString(), logits.toString(), "2", "32", "32");
        assertTrue(py.contains("keys 122"), py);

        Path st = tmp.resolve("model.safetensors");
        Cli.Result s = Cli.run("export", "--checkpoint", run.toString(), "--format", "safetensors", "--out",
                st.toString());
        assertEquals(0, s.code(), s.err());
        Cli.Result inspect = Cli.run("checkpoint", "inspect", st.toString());
        assertEquals(0, inspect.code(), inspect.out() + inspect.err());
        assertTrue(inspect.out().contains("matched 102"), inspect.out());
    }

    /**
     * The ONNX export of the fine-tuned model: ONNX Runtime gives our logits on a batch of 3 (dynamic batch), the
     * variant with normalization in the graph gives them on raw 0-255 pixel values, the metadata carries the class
     * names, and the ONNX checker accepts both files.
     */
    @Test
    void exportedOnnxRunsInOnnxRuntimeWithOurLogits() throws Exception {
        Path onnx = tmp.resolve("model.onnx");
        Path raw = tmp.resolve("model-raw.onnx");
        Cli.Result x = Cli.run("export", "--checkpoint", run.toString(), "--format", "onnx", "--dynamic-batch",
                "--out", onnx.toString());
        assertEquals(0, x.code(), x.err());
        assertEquals(0, Cli.run("export", "--checkpoint", run.toString(), "--format", "onnx", "--normalize-in-graph",
                "--out", raw.toString()).code());
        JsonNode side = new ObjectMapper().readTree(tmp.resolve("model.onnx.json").toFile());
        assertTrue(side.get("run_in_java").asText().contains("OrtSession"), side.toString());
        assertEquals("onnx", side.get("format").asText());
        float[] mean = {0.485f, 0.456f, 0.406f};
        float[] std = {0.229f, 0.224f, 0.225f};
        float[] in;
        float[] ours;
        Engines.pytorch();
        try (TrainedModel m = TrainedModel.open(run.toString(), null);
                NDManager nm = NDManager.newBaseManager();
                Engines.NoGrad g = Engines.noGrad()) {
            assertEquals(List.of(0.485f, 0.456f, 0.406f), List.of(m.preprocessing().mean()[0],
                    m.preprocessing().mean()[1], m.preprocessing().mean()[2]));
            NDArray pixels = nm.randomUniform(0, 255, new Shape(3, 3, 32, 32)).floor();
            NDArray normalized = pixels.div(255).sub(nm.create(mean, new Shape(1, 3, 1, 1)))
                    .div(nm.create(std, new Shape(1, 3, 1, 1)));
            in = pixels.toFloatArray();
            ours = m.model().forward(m.parameterStore(), new NDList(normalized), false).singletonOrThrow()
                    .toFloatArray();
            float[] normalizedValues = normalized.toFloatArray();
            var env = ai.onnxruntime.OrtEnvironment.getEnvironment();
            for (Path f : List.of(onnx, raw)) {
                int batch = f.equals(onnx) ? 3 : 1;
                float[] input = java.util.Arrays.copyOf(f.equals(onnx) ? normalizedValues : in, batch * 3 * 32 * 32);
                try (var s = env.createSession(f.toString(), new ai.onnxruntime.OrtSession.SessionOptions());
                        var t = ai.onnxruntime.OnnxTensor.createTensor(env, java.nio.FloatBuffer.wrap(input),
                                new long[] {batch, 3, 32, 32});
                        var r = s.run(java.util.Map.of("input", t))) {
                    assertTrue(s.getMetadata().getCustomMetadata().get("class_names").contains("sandal"));
                    float[][] logits = (float[][]) r.get(0).getValue();
                    assertEquals(batch, logits.length);
                    for (int i = 0; i < batch; i++) {
                        for (int c = 0; c < 5; c++) {
                            assertEquals(ours[i * 5 + c], logits[i][c], 1e-4 * Math.max(1, Math.abs(ours[i * 5 + c])),
                                    f.getFileName() + " logit " + i + "," + c);
                        }
                    }
                }
            }
        }
        String py = Cli.python(Cli.repo().resolve("scripts/reference/onnx_check.py").toString(), onnx.toString(),
                raw.toString());
        assertTrue(py.contains("output ['batch', 5]") && py.contains("output [1, 5]"), py);
    }

    private static byte[] le(float[] v) {
        ByteBuffer b = ByteBuffer.allocate(v.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        b.asFloatBuffer().put(v);
        return b.array();
    }
}
