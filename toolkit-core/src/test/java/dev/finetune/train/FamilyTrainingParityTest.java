package dev.finetune.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Parameter;
import dev.finetune.checkpoint.Checkpoint;
import dev.finetune.checkpoint.Checkpoints;
import dev.finetune.checkpoint.PthWriter;
import dev.finetune.model.Architecture;
import dev.finetune.model.Architectures;
import dev.finetune.model.CNBlock;
import dev.finetune.model.InvertedResidual;
import dev.finetune.model.Network;
import dev.finetune.optim.OptimizerSettings;
import dev.finetune.policy.BnPolicy;
import dev.finetune.policy.FreezePolicy;
import dev.finetune.testing.TorchReference;
import dev.finetune.weights.StateDicts;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Training and export for every family beyond ResNet-18 (one architecture per code path, see {@link #ARCHS}), against Debian's torchvision from the same seeded weights:
 * three SGD steps of a linear probe (only the last Linear trains, every BN frozen) and of a full fine-tune (everything
 * trains, BN statistics frozen: batch statistics of 1×1 maps at batch 4 turn rounding into diverging trajectories)
 * give PyTorch's losses and parameter updates; and a fine-tuner's model exported as a
 * {@code .pth} loads with {@code weights_only=True}, strictly, into {@code torchvision.models.NAME(num_classes=10)}
 * and gives our logits there.
 */
class FamilyTrainingParityTest {
    @TempDir
    Path tmp;

    /**
     * One architecture per code path, so that the suite stays within its time budget: the other members of a family
     * (wide_resnet50_2, mobilenet_v3_large, efficientnet_b1..b3, regnet_y_800mf) run the same blocks with other
     * widths and depths, and {@link dev.finetune.model.FamilyParityTest} checks their names, counts and logits.
     * vgg16_bn (138M parameters, a 550 MB checkpoint read per fine-tuner) is left out: its layers (biased convs,
     * max-pools, the features/classifier layout) train here in ConvNeXt, RegNet and MobileNet. resnext50_32x4d (grouped
     * convs, trained here by MobileNet's depthwise ones) passed both policies when this was written and is left out for
     * time, as are mobilenet_v2 (the inverted residual of mobilenet_v3_small without SE) and efficientnet_v2_s (fused
     * blocks of the same layers as efficientnet_b0), which passed too; the ResNet family's training is checked by
     * TrajectoryParityTest. {@code .ci/run} runs all 15 ({@code -Dfinetune.test.exhaustive=true}).
     */
    private static final String ARCHS = "mobilenet_v3_small,efficientnet_b0,convnext_tiny,regnet_y_400mf,densenet121";


    /** With {@code -Dfinetune.test.exhaustive=true} ({@code .ci/run}): all 15 architectures, not one per code path. */
    private static final boolean EXHAUSTIVE = Boolean.getBoolean("finetune.test.exhaustive");

    static Path steps() throws IOException, InterruptedException {
        Path ref = dev.finetune.model.FamilyParityTest.reference();
        return EXHAUSTIVE
                ? TorchReference.cached("family-steps-all", "DONE", "family_steps.py", "steps", ref.toString(),
                        dev.finetune.model.FamilyParityTest.ARCHS)
                : TorchReference.cached("family-steps", "DONE", "family_steps.py", "steps", ref.toString(), ARCHS);
    }

    @Test
    void threeSgdStepsMatchPyTorchForEveryFamily() throws Exception {
        Path dir = steps();
        List<String> failures = new ArrayList<>();
        for (String name : (EXHAUSTIVE ? dev.finetune.model.FamilyParityTest.ARCHS : ARCHS).split(",")) {
            for (String policy : List.of("probe", "full")) {
                checkSteps(dir, name, policy, failures);
            }
        }
        assertTrue(failures.isEmpty(), String.join("\n", failures));
    }

    /**
     * A full fine-tune with every BatchNorm in train mode (batch statistics forward and backward, running statistics
     * updated with PyTorch's momentum and unbiased variance): an SGD step on a batch of 8 at 64×64 gives PyTorch's
     * loss, parameter updates and running statistics. One step, because three are chaotic from a random
     * initialization with batch statistics of 8 images: PyTorch with one thread and with two ends 10 % apart in the
     * third loss (resnext50_32x4d). Even one step's updates carry float32 rounding of up to 12 % (vgg16_bn), so they
     * are measured, ours and PyTorch's, from the same step in float64. Every architecture of
     * {@link dev.finetune.model.FamilyParityTest}, run by {@code .ci/run} with {@code -Dfinetune.test.exhaustive=true}
     * (about 40 s of PyTorch and 80 s here, over the test script's budget).
     */
    @Test
    @org.junit.jupiter.api.condition.EnabledIfSystemProperty(named = "finetune.test.exhaustive", matches = "true")
    void fullFineTuneWithTrainModeBatchNormMatchesPyTorch() throws Exception {
        Path ref = dev.finetune.model.FamilyParityTest.reference();
        String archs = dev.finetune.model.FamilyParityTest.ARCHS;
        Path dir = TorchReference.cached("family-steps-bn", "DONE", "family_steps.py", "steps-bn", ref.toString(),
                archs);
        List<String> failures = new ArrayList<>();
        for (String name : archs.split(",")) {
            checkSteps(dir, name, "bn", failures);
        }
        assertTrue(failures.isEmpty(), String.join("\n", failures));
    }

    private static void checkSteps(Path dir, String name, String policy, List<String> failures) throws Exception {
        Path ref = dev.finetune.model.FamilyParityTest.reference();
        boolean bn = policy.equals("bn");
        float[] xs = TorchReference.readF32(dir.resolve(bn ? "steps_x64.f32" : "steps_x.f32"));
        long[] ys = TorchReference.readI64(dir.resolve(bn ? "steps_y8.i64" : "steps_y.i64"));
        Shape shape = bn ? new Shape(8, 3, 64, 64) : new Shape(4, 3, 32, 32);
        Architecture arch = Architectures.parse(name);
        Checkpoint ckpt = Checkpoints.read(ref.resolve(name + ".pth"));
        FreezePolicy p = switch (policy) {
            case "probe" -> new FreezePolicy(false, -1, List.of(FreezePolicy.Rule.train("freeze.rules[0]",
                    arch.headName())), BnPolicy.AUTO);
            case "full" -> new FreezePolicy(true, -1, List.of(), BnPolicy.FREEZE_STATS);
            default -> new FreezePolicy(true, -1, List.of(), BnPolicy.TRAIN);
        };
        try (FineTuner ft = FineTuner.builder().arch(arch).checkpoint(ckpt).policy(p)
                .optimizer(OptimizerSettings.sgd(0.01, 0.9)).dropout(0f).foldFrozenPrefix(false).build()) {
            quiet(ft.model());
            Map<String, Parameter> params = ft.model().namedTensors();
            List<float[]> before = new ArrayList<>();
            params.forEach((n, t) -> before.add(t.getArray().toFloatArray()));
            NDArray x = ft.manager().create(xs, shape);
            NDArray y = ft.manager().create(ys).toType(DataType.INT64, false);
            int n = bn ? 1 : 3;
            float[] losses = new float[n];
            for (int i = 0; i < n; i++) {
                losses[i] = ft.trainStep(x, y, 0.01);
            }
            float[] torchLosses = TorchReference.readF32(dir.resolve(name + "_" + policy + "_loss.f32"));
            for (int i = 0; i < n; i++) {
                if (Math.abs(losses[i] - torchLosses[i]) > 1e-4 * Math.max(1, Math.abs(torchLosses[i]))) {
                    failures.add(name + " " + policy + " loss " + i + ": " + losses[i] + " vs " + torchLosses[i]);
                }
            }
            // Per parameter (buffers aside, state_dict order): sum and sum of squares of its update.
            double[] torchUpdate = TorchReference.readF64(dir.resolve(name + "_" + policy + "_update.f64"));
            // The same step in float64: the truth both float32 implementations are measured from.
            double[] exact = bn ? TorchReference.readF64(dir.resolve(name + "_bn64_update.f64")) : null;
            double torchError = 0;
            if (bn) {
                for (int j = 1; j < exact.length; j += 2) {
                    torchError = Math.max(torchError, relNorm(torchUpdate[j], exact[j]));
                }
            }
            List<Double> stats = new ArrayList<>();
            int k = 0;
            int i = 0;
            double worst = 0;
            for (Map.Entry<String, Parameter> e : params.entrySet()) {
                float[] b = before.get(i++);
                if (e.getKey().endsWith(".running_mean") || e.getKey().endsWith(".running_var")) {
                    double sum = 0;
                    for (float v : e.getValue().getArray().toFloatArray()) {
                        sum += v;
                    }
                    stats.add(sum);
                    continue;
                }
                float[] a = e.getValue().getArray().toFloatArray();
                double sq = 0;
                for (int j = 0; j < a.length; j++) {
                    double d = (double) a[j] - b[j];
                    sq += d * d;
                }
                // Update norms agree with PyTorch's to 1e-3 relative (plus a floor for parameters that barely move);
                // with train-mode BN, with the float64 step to 1e-2 or twice PyTorch's own worst float32 error there
                // (a ReLU input near zero or a channel of near-constant batch values turns rounding into a visible
                // change: measured worst errors 0.011 for densenet121 and 0.097 for vgg16_bn here, PyTorch's own
                // 0.013 and 0.12; regnet_y_400mf 0.0069 here against 1.4e-4, regnet_y_800mf 8.5e-5 against 0.0049).
                // A wrong BN backward (batch statistics treated as constants) or update is off by far more.
                double tSq = bn ? exact[2 * k + 1] : torchUpdate[2 * k + 1];
                double rel = relNorm(sq, tSq);
                double tol = bn ? Math.max(1e-2, 2 * torchError) : 1e-3;
                worst = Math.max(worst, rel);
                if (rel > tol && Math.abs(Math.sqrt(sq) - Math.sqrt(tSq)) > 1e-6) {
                    failures.add(name + " " + policy + " " + e.getKey() + ": update norm " + Math.sqrt(sq)
                            + " vs " + Math.sqrt(tSq));
                }
                // Which parameters move at all (the probe's frozen ones must not); with train-mode BN every parameter
                // trains, and a bias whose BN feeds another BN through a 1x1 conv has an exactly zero gradient in
                // exact arithmetic, so float32 leaves rounding there that float64 does not (the norm floor covers it).
                if (!bn && (tSq == 0) != (sq == 0)) {
                    failures.add(name + " " + policy + " " + e.getKey() + (sq == 0 ? " did not move" : " moved"));
                }
                k++;
            }
            assertEquals(torchUpdate.length / 2, k, name + ": parameter count");
            double worstStat = 0;
            if (bn) {
                double[] torchStats = TorchReference.readF64(dir.resolve(name + "_bn_stats.f64"));
                assertEquals(torchStats.length, stats.size(), name + ": BatchNorm statistics count");
                for (int j = 0; j < torchStats.length; j++) {
                    double d = Math.abs(stats.get(j) - torchStats[j]) / Math.max(1, Math.abs(torchStats[j]));
                    worstStat = Math.max(worstStat, d);
                    if (d > 1e-4) {
                        failures.add(name + " bn running statistic " + j + ": sum " + stats.get(j) + " vs "
                                + torchStats[j]);
                    }
                }
            }
            float[] head = params.get(arch.headName() + ".weight").getArray().toFloatArray();
            float[] torchHead = TorchReference.readF32(dir.resolve(name + "_" + policy + "_head.f32"));
            double d = TorchReference.maxAbsDiff(head, torchHead);
            if (d > 1e-4) {
                failures.add(name + " " + policy + " head weight max |diff| " + d);
            }
            System.out.printf("parity: %s %s %d SGD step(s): losses %s, worst update-norm rel diff %.2g%s,"
                    + " head max |diff| %.2g%s%n", name, policy, n, java.util.Arrays.toString(losses), worst,
                    bn ? String.format(" from float64 (PyTorch's float32: %.2g)", torchError) : "", d,
                    bn ? String.format(", running statistics worst rel diff %.2g", worstStat) : "");
        }
    }

    @Test
    void exportedModelsLoadStrictlyInTorchvision() throws Exception {
        Path ref = dev.finetune.model.FamilyParityTest.reference();
        float[] in = TorchReference.readF32(ref.resolve("input.f32"));
        Files.write(tmp.resolve("export_input.f32"), Files.readAllBytes(ref.resolve("input.f32")));
        List<String> specs = new ArrayList<>();
        Map<String, float[]> ours = new java.util.LinkedHashMap<>();
        // Every family once (the two largest, wide_resnet50_2 and vgg16_bn, exported the same way when this was written);
        // ResNeXt-50 (25M parameters, the ResNet writer with grouped convolutions) in .ci/run's exhaustive step.
        for (String name : (ARCHS + ",mobilenet_v2" + (EXHAUSTIVE ? ",resnext50_32x4d" : "")).split(",")) {
            Architecture arch = Architectures.parse(name);
            try (FineTuner ft = FineTuner.builder().arch(arch).checkpoint(Checkpoints.read(ref.resolve(name + ".pth")))
                    .headClasses(10).seed(7).policy(FreezePolicy.linearProbe()).build()) {
                PthWriter.write(tmp.resolve(name + ".pth"), StateDicts.export(ft.model()));
                ours.put(name, ft.predictLogits(ft.manager().create(in, new Shape(2, 3, 64, 64))).toFloatArray());
                specs.add(name + ":10");
            }
        }
        TorchReference.runPython(TorchReference.repoRoot().resolve("scripts/reference/family_steps.py").toString(),
                "load", tmp.toString(), String.join(",", specs));
        for (String name : ours.keySet()) {
            float[] torch = TorchReference.readF32(tmp.resolve(name + "_export_logits.f32"));
            double d = TorchReference.maxAbsDiff(ours.get(name), torch);
            System.out.printf("parity: %s exported, torchvision logits max |diff| %.3g%n", name, d);
            assertTrue(d < 1e-4, name + ": torchvision's logits on our export differ by " + d);
        }
    }

    /** |‖a‖ − ‖b‖| / ‖b‖ from sums of squares, with a floor for parameters that barely move. */
    private static double relNorm(double sqA, double sqB) {
        return Math.abs(Math.sqrt(sqA) - Math.sqrt(sqB)) / Math.max(Math.sqrt(sqB), 1e-6);
    }

    /** Dropout and stochastic depth off, as the reference runs them. */
    private static void quiet(Network net) {
        net.namedModules().values().forEach(b -> {
            if (b instanceof InvertedResidual r) {
                r.stochasticDepth().setRate(0);
            }
            if (b instanceof CNBlock c) {
                c.stochasticDepth().setRate(0);
            }
            if (b instanceof dev.finetune.model.DropoutLayer d) {
                d.setP(0);
            }
        });
    }



}
