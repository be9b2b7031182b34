package dev.finetune.export;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.ParameterStore;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import dev.finetune.checkpoint.Checkpoints;
import dev.finetune.engine.Engines;
import dev.finetune.export.onnx.OnnxProto.ModelProto;
import dev.finetune.model.Architecture;
import dev.finetune.model.Architectures;
import dev.finetune.model.FamilyParityTest;
import dev.finetune.model.Network;
import dev.finetune.testing.TorchReference;
import dev.finetune.weights.LoadReport;
import dev.finetune.weights.WeightLoader;
import java.io.OutputStream;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The ONNX export run by ONNX Runtime: against torchvision's own logits on the same weights for ResNet-18 (at 224) and
 * the families the parity references cover (at 64), and against our network for the variants no reference covers;
 * every file also passes {@code onnx.checker} (full check, with shape inference) from Debian's python3-onnx.
 *
 * <p>{@code scripts/test.sh} runs one architecture per kind of block (plain and grouped bottlenecks, inverted residuals
 * with ReLU6, with hardswish and squeeze-excitation, with SiLU, ConvNeXt's LayerNorm, GELU and layer scale, RegNet's
 * grouped SE blocks, dense concatenation); with {@code -Dfinetune.test.exhaustive=true} ({@code .ci/run} sets it)
 * every one of the 37 architectures (about 165 s), VGG's adaptive 7×7 pool among them: a VGG's 550 MB file takes
 * 15-20 s to write, load and check, too much for the test script's budget.
 */
public class OnnxExportTest {
    private static final Path OUT = Path.of("target", "onnx-export").toAbsolutePath();
    private static final Set<String> TORCH_REFERENCED = Set.of(FamilyParityTest.ARCHS.split(","));
    /**
     * One architecture per kind of block; the rest share them. resnet34 stands for the variants no reference covers
     * (checked against our network), so that path runs in the test script too.
     */
    private static final Set<String> QUICK = Set.of("resnext50_32x4d", "mobilenet_v2", "mobilenet_v3_small",
            "efficientnet_b0", "convnext_tiny", "regnet_y_400mf", "densenet121", "resnet34");
    private static final boolean EXHAUSTIVE = Boolean.getBoolean("finetune.test.exhaustive");
    private static final List<Path> WRITTEN = new ArrayList<>();

    static List<String> others() {
        List<String> out = new ArrayList<>(Architectures.names());
        out.removeIf(n -> TORCH_REFERENCED.contains(n) || n.equals("resnet18") || !(EXHAUSTIVE || QUICK.contains(n)));
        return out;
    }

    static List<String> torchReferenced() {
        List<String> out = new ArrayList<>(List.of(FamilyParityTest.ARCHS.split(",")));
        out.removeIf(n -> !(EXHAUSTIVE || QUICK.contains(n)));
        return out;
    }

    /** Every file this class wrote, through the ONNX project's checker in one Python run. */
    @AfterAll
    static void onnxCheckerAcceptsEveryFile() throws Exception {
        List<String> cmd = new ArrayList<>();
        cmd.add(TorchReference.repoRoot().resolve("scripts/reference/onnx_check.py").toString());
        WRITTEN.forEach(f -> cmd.add(f.toString()));
        String out = TorchReference.runPython(cmd.toArray(String[]::new));
        for (Path f : WRITTEN) {
            assertTrue(out.contains("checked " + f + " (opset 17, output ['batch', 1000])"), out);
            Files.delete(f);
        }
    }

    @ParameterizedTest
    @MethodSource("dev.finetune.export.OnnxExportTest#torchReferenced")
    void matchesTorchvisionFamilies(String name) throws Exception {
        Path dir = FamilyParityTest.reference();
        float[] input = TorchReference.readF32(dir.resolve("input.f32"));
        float[] torch = TorchReference.readF32(dir.resolve(name + "_eval.f32"));
        check(name, dir.resolve(name + ".pth"), input, new long[] {2, 3, 64, 64}, torch);
    }

    @Test
    void matchesTorchvisionResNet18At224() throws Exception {
        TorchReference ref = TorchReference.get();
        check("resnet18", ref.checkpoint(), ref.array("input"), ref.shape("input"), ref.array("eval_logits"));
    }

    /** The variants no reference covers: ONNX Runtime against our network (itself parity-tested per block type). */
    @ParameterizedTest
    @MethodSource("others")
    void matchesOurNetworkForTheOtherVariants(String name) throws Exception {
        check(name, null, seededInput(1 * 3 * 32 * 32), new long[] {1, 3, 32, 32}, null);
    }

    /**
     * Exports {@code name} (weights from {@code checkpoint}, or seeded from-scratch ones), runs the file in ONNX
     * Runtime and compares with our network's logits and, when given, torchvision's; then {@code onnx.checker}.
     */
    private static void check(String name, Path checkpoint, float[] input, long[] shape, float[] torch)
            throws Exception {
        Architecture arch = Architectures.parse(name);
        Engines.pytorch();
        Path file = OUT.resolve(name + ".onnx");
        float[] ours;
        try (NDManager m = NDManager.newBaseManager()) {
            ai.djl.engine.Engine.getInstance().setRandomSeed(7);
            Network net = arch.create(1000).initialize(m);
            if (checkpoint != null) {
                LoadReport report = WeightLoader.load(net, Checkpoints.read(checkpoint), WeightLoader.Options.defaults());
                assertTrue(report.isClean(), report.summary());
            }
            ours = net.inferLogits(new ParameterStore(m, false), m.create(input, new Shape(shape))).toFloatArray();
            ModelProto model = OnnxGraph.build(net, new OnnxGraph.Spec((int) shape[2], true, null, null,
                    Map.of("arch", name), "test"));
            Files.createDirectories(OUT);
            try (OutputStream o = Files.newOutputStream(file)) {
                model.writeTo(o);
            }
        }
        float[] ort = runOrt(file, input, shape);
        double scale = 1;
        for (float v : ours) {
            scale = Math.max(scale, Math.abs(v));
        }
        double tol = 1e-4 * scale;
        double dOurs = TorchReference.maxAbsDiff(ort, ours);
        System.out.printf("onnx: %s ORT vs ours max |diff| %.3g", name, dOurs);
        assertTrue(dOurs <= tol, name + ": ONNX Runtime differs from our network by " + dOurs + " (tolerance " + tol
                + ")");
        if (torch != null) {
            double dTorch = TorchReference.maxAbsDiff(ort, torch);
            System.out.printf(", vs torchvision %.3g", dTorch);
            assertTrue(dTorch <= tol, name + ": ONNX Runtime differs from torchvision by " + dTorch + " (tolerance "
                    + tol + ")");
        }
        System.out.printf(" (scale %.3g)%n", scale);
        WRITTEN.add(file);
    }

    static float[] runOrt(Path file, float[] input, long[] shape) throws Exception {
        OrtEnvironment env = OrtEnvironment.getEnvironment();
        try (OrtSession.SessionOptions so = new OrtSession.SessionOptions()) {
            so.setIntraOpNumThreads(1);
            so.setInterOpNumThreads(1);
            try (OrtSession s = env.createSession(file.toString(), so);
                    OnnxTensor t = OnnxTensor.createTensor(env, FloatBuffer.wrap(input), shape);
                    OrtSession.Result r = s.run(Map.of("input", t))) {
                assertEquals("logits", s.getOutputNames().iterator().next());
                float[][] out = (float[][]) r.get(0).getValue();
                float[] flat = new float[out.length * out[0].length];
                for (int i = 0; i < out.length; i++) {
                    System.arraycopy(out[i], 0, flat, i * out[0].length, out[0].length);
                }
                return flat;
            }
        }
    }

    private static float[] seededInput(int n) {
        java.util.Random r = new java.util.Random(3);
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) r.nextGaussian();
        }
        return x;
    }
}
