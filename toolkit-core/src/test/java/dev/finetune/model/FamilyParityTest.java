package dev.finetune.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.ParameterStore;
import dev.finetune.checkpoint.Checkpoint;
import dev.finetune.checkpoint.Checkpoints;
import dev.finetune.engine.Engines;
import dev.finetune.testing.TorchReference;
import dev.finetune.weights.LoadReport;
import dev.finetune.weights.WeightLoader;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Every family beyond ResNet-18 against Debian's torchvision on the same seeded weights (with perturbed BN statistics
 * and non-zero biases): the tensor names and their order are the state_dict's, the parameter count is
 * {@code sum(p.numel())}, and eval-mode and train-mode logits and the BN statistics update agree.
 */
public class FamilyParityTest {
    /** Every architecture the reference script covers; one Python run for all of them. */
    public static final String ARCHS = "resnext50_32x4d,wide_resnet50_2,mobilenet_v2,mobilenet_v3_small,"
            + "mobilenet_v3_large,efficientnet_b0,efficientnet_b1,efficientnet_b2,efficientnet_b3,efficientnet_v2_s,"
            + "convnext_tiny,regnet_y_400mf,regnet_y_800mf,densenet121,vgg16_bn";

    public static Path reference() throws IOException, InterruptedException {
        return TorchReference.cached("families-reference", "DONE", "families.py", ARCHS);
    }

    @ParameterizedTest
    @ValueSource(strings = {"resnext50_32x4d", "wide_resnet50_2", "mobilenet_v2", "mobilenet_v3_small",
        "mobilenet_v3_large", "efficientnet_b0", "efficientnet_b1", "efficientnet_b2", "efficientnet_b3",
        "efficientnet_v2_s", "convnext_tiny", "regnet_y_400mf", "regnet_y_800mf", "densenet121",
        "vgg16_bn"})
    void matchesTorchvision(String name) throws Exception {
        Path dir = reference();
        List<String> lines = Files.readAllLines(dir.resolve(name + ".keys.txt"));
        long torchParams = Long.parseLong(lines.get(lines.size() - 1).substring("params ".length()));
        List<String> torchKeys = new ArrayList<>(lines.subList(0, lines.size() - 1));
        torchKeys.removeIf(k -> k.endsWith(".num_batches_tracked"));
        Architecture arch = Architectures.parse(name);
        Checkpoint ckpt = Checkpoints.read(dir.resolve(name + ".pth"));
        var recognized = dev.finetune.weights.ArchitectureRecognizer.recognize(ckpt,
                dev.finetune.weights.KeyMapping.defaults()).orElseThrow(() -> new AssertionError(name));
        assertEquals("torchvision " + name + ", 1000 classes", recognized.describe(), "recognized from keys and shapes");
        Engines.pytorch();
        try (NDManager m = NDManager.newBaseManager()) {
            Network net = arch.create(1000).initialize(m);
            assertEquals(torchKeys, new ArrayList<>(net.namedTensors().keySet()), name + ": state_dict keys");
            long params = net.namedTensors().entrySet().stream()
                    .filter(e -> !e.getKey().endsWith(".running_mean") && !e.getKey().endsWith(".running_var"))
                    .mapToLong(e -> e.getValue().getShape().size())
                    .sum();
            assertEquals(torchParams, params, name + ": parameter count");
            LoadReport report = WeightLoader.load(net, ckpt, WeightLoader.Options.defaults());
            assertTrue(report.isClean(), report.summary());
            net.setDropout(0);
            NDArray x = m.create(TorchReference.readF32(dir.resolve("input.f32")), new Shape(2, 3, 64, 64));
            ParameterStore ps = new ParameterStore(m, false);
            float[] eval;
            float[] inferred;
            // The plain eager path (grad mode on: nothing scoped or freed early) and inference, which frees every
            // intermediate once consumed (StepScopes): bit-equal.
            try (var g = Engines.gradEnabled()) {
                eval = net.forward(ps, new NDList(x), false).singletonOrThrow().toFloatArray();
            }
            try (var g = Engines.noGrad()) {
                inferred = net.inferLogits(ps, x).toFloatArray();
            }
            float[] torchEval = TorchReference.readF32(dir.resolve(name + "_eval.f32"));
            double tol = 1e-5 * Math.max(1, scale(torchEval)) + 1e-5;
            double d = TorchReference.maxAbsDiff(eval, torchEval);
            System.out.printf("parity: %s eval logits max |diff| %.3g (scale %.3g)%n", name, d, scale(torchEval));
            assertTrue(d < tol, name + " eval logits differ from torchvision by " + d + " (tolerance " + tol + ")");
            assertTrue(TorchReference.maxAbsDiff(inferred, eval) == 0, name + ": inferLogits equals forward");

            // Train mode (dropout rates 0 on both sides): batch statistics and the running-statistics update.
            disableInternalDropout(net);
            float[] train;
            try (var g = Engines.noGrad()) {
                train = net.forward(ps, new NDList(x), true).singletonOrThrow().toFloatArray();
            }
            float[] torchTrain = TorchReference.readF32(dir.resolve(name + "_train.f32"));
            double dt = TorchReference.maxAbsDiff(train, torchTrain);
            double tolT = 1e-4 * Math.max(1, scale(torchTrain));
            System.out.printf("parity: %s train-mode logits max |diff| %.3g%n", name, dt);
            assertTrue(dt < tolT, name + " train-mode logits differ from torchvision by " + dt);
            float[] stats = TorchReference.readF32(dir.resolve(name + "_train_stats.f32"));
            if (stats.length == 0) {
                assertTrue(net.batchNorms().isEmpty(), name + " has BatchNorm but the reference saw none");
                return;
            }
            BatchNorm2d first = net.batchNorms().get(0).bn();
            int c = first.channels();
            float[] mean = first.runningMean().getArray().toFloatArray();
            float[] var = first.runningVar().getArray().toFloatArray();
            for (int i = 0; i < c; i++) {
                assertEquals(stats[i], mean[i], 1e-5 + 1e-5 * Math.abs(stats[i]), name + " running_mean[" + i + "]");
                assertEquals(stats[c + i], var[i], 1e-4 * Math.max(1, Math.abs(stats[c + i])),
                        name + " running_var[" + i + "]");
            }
        }
    }

    /** {@code checkpoint inspect}, {@code predict} and an unset {@code model.arch} tell the architecture from the file. */
    @org.junit.jupiter.api.Test
    void recognizesEachArchitectureFromKeysAndShapes() throws Exception {
        // Each architecture's own file is recognized in matchesTorchvision, which has read it already.
        Path dir = reference();
        // A 10-class head and DataParallel's "module." prefix: still recognized, with the head's class count.
        Checkpoint v2 = Checkpoints.read(dir.resolve("mobilenet_v2.pth"));
        java.util.LinkedHashMap<String, dev.finetune.checkpoint.HostTensor> renamed = new java.util.LinkedHashMap<>();
        v2.tensors().forEach((k, t) -> renamed.put("module." + k, k.startsWith("classifier.1.")
                ? dev.finetune.checkpoint.HostTensor.of(k.endsWith("weight") ? new long[] {10, 1280}
                        : new long[] {10}, new float[k.endsWith("weight") ? 12800 : 10])
                : t));
        Checkpoint wrapped = new Checkpoint(v2.source(), v2.format(), renamed, v2.metadata());
        var r = dev.finetune.weights.ArchitectureRecognizer.recognize(wrapped,
                dev.finetune.weights.KeyMapping.defaults()).orElseThrow();
        assertEquals("torchvision mobilenet_v2, 10 classes", r.describe());
        // A ResNet-50 with one stage cut short fits nothing.
        Checkpoint cut = Checkpoints.read(dir.resolve("resnext50_32x4d.pth"));
        var fewer = new java.util.LinkedHashMap<>(cut.tensors());
        fewer.keySet().removeIf(k -> k.startsWith("layer3.5."));
        assertTrue(dev.finetune.weights.ArchitectureRecognizer.recognize(
                new Checkpoint(cut.source(), cut.format(), fewer, cut.metadata()),
                dev.finetune.weights.KeyMapping.defaults()).isEmpty());
    }

    /**
     * torchvision's published DenseNet files spell {@code denselayer1.norm.1.weight}; torchvision rewrites that to
     * {@code norm1} when loading, and so do we (and the report names the rewrite).
     */
    @org.junit.jupiter.api.Test
    void denseNetLoadsTheLegacyKeySpelling() throws Exception {
        Checkpoint ckpt = Checkpoints.read(reference().resolve("densenet121.pth"));
        java.util.LinkedHashMap<String, dev.finetune.checkpoint.HostTensor> legacy = new java.util.LinkedHashMap<>();
        ckpt.tensors().forEach((k, t) -> legacy.put(k.replaceAll("(denselayer\\d+\\.(?:norm|conv))([12])\\.", "$1.$2."),
                t));
        assertTrue(legacy.containsKey("features.denseblock1.denselayer1.norm.1.weight"));
        Checkpoint old = new Checkpoint(ckpt.source(), ckpt.format(), legacy, ckpt.metadata());
        assertEquals("torchvision densenet121, 1000 classes", dev.finetune.weights.ArchitectureRecognizer
                .recognize(old, dev.finetune.weights.KeyMapping.defaults()).orElseThrow().describe());
        Engines.pytorch();
        try (NDManager m = NDManager.newBaseManager()) {
            Network net = DenseNetArch.DENSENET121.create(1000).initialize(m);
            LoadReport report = WeightLoader.load(net, old, WeightLoader.Options.defaults());
            assertTrue(report.isClean(), report.summary());
            assertEquals("features.denseblock1.denselayer1.norm1.weight",
                    report.renamed().get("features.denseblock1.denselayer1.norm.1.weight"));
        }
    }

    /** Sets every dropout and stochastic-depth rate to 0, as the reference does (the head's own is 0 already). */
    private static void disableInternalDropout(Network net) {
        net.namedModules().values().forEach(b -> {
            if (b instanceof DropoutLayer d) {
                d.setP(0);
            }
            if (b instanceof InvertedResidual r) {
                r.stochasticDepth().setRate(0);
            }
            if (b instanceof CNBlock c) {
                c.stochasticDepth().setRate(0);
            }
        });
    }

    private static double scale(float[] a) {
        double s = 0;
        for (float v : a) {
            s = Math.max(s, Math.abs(v));
        }
        return s;
    }

}
