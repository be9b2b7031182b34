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
     * TrajectoryParityTest.
     */
    private static final String ARCHS = "mobilenet_v3_small,efficientnet_b0,convnext_tiny,regnet_y_400mf,densenet121";

    static Path steps() throws IOException, InterruptedException {
        Path ref = dev.finetune.model.FamilyParityTest.reference();
        return TorchReference.cached("family-steps", "DONE", "family_steps.py", "steps", ref.toString(), ARCHS);
    }

    @Test
    void threeSgdStepsMatchPyTorchForEveryFamily() throws Exception {
        Path ref = dev.finetune.model.FamilyParityTest.reference();
        Path dir = steps();
        float[] xs = TorchReference.readF32(dir.resolve("steps_x.f32"));
        long[] ys = TorchReference.readI64(dir.resolve("steps_y.i64"));
        List<String> failures = new ArrayList<>();
        for (String name : ARCHS.split(",")) {
            Architecture arch = Architectures.parse(name);
            Checkpoint ckpt = Checkpoints.read(ref.resolve(name + ".pth"));
            for (String policy : List.of("probe", "full")) {
                FreezePolicy p = policy.equals("probe")
                        ? new FreezePolicy(false, -1, List.of(FreezePolicy.Rule.train("freeze.rules[0]",
                                arch.headName())), BnPolicy.AUTO)
                        : new FreezePolicy(true, -1, List.of(), BnPolicy.FREEZE_STATS);
                try (FineTuner ft = FineTuner.builder().arch(arch).checkpoint(ckpt).policy(p)
                        .optimizer(OptimizerSettings.sgd(0.01, 0.9)).dropout(0f).foldFrozenPrefix(false).build()) {
                    quiet(ft.model());
                    Map<String, Parameter> params = ft.model().namedTensors();
                    List<float[]> before = new ArrayList<>();
                    params.forEach((n, t) -> before.add(t.getArray().toFloatArray()));
                    NDArray x = ft.manager().create(xs, new Shape(4, 3, 32, 32));
                    NDArray y = ft.manager().create(ys).toType(DataType.INT64, false);
                    float[] losses = new float[3];
                    for (int i = 0; i < 3; i++) {
                        losses[i] = ft.trainStep(x, y, 0.01);
                    }
                    float[] torchLosses = TorchReference.readF32(dir.resolve(name + "_" + policy + "_loss.f32"));
                    for (int i = 0; i < 3; i++) {
                        if (Math.abs(losses[i] - torchLosses[i]) > 1e-4 * Math.max(1, Math.abs(torchLosses[i]))) {
                            failures.add(name + " " + policy + " loss " + i + ": " + losses[i] + " vs " + torchLosses[i]);
                        }
                    }
                    // Per parameter (buffers aside, state_dict order): sum and sum of squares of its update.
                    double[] torchUpdate = TorchReference.readF64(dir.resolve(name + "_" + policy + "_update.f64"));
                    int k = 0;
                    int i = 0;
                    double worst = 0;
                    for (Map.Entry<String, Parameter> e : params.entrySet()) {
                        float[] b = before.get(i++);
                        if (e.getKey().endsWith(".running_mean") || e.getKey().endsWith(".running_var")) {
                            continue;
                        }
                        float[] a = e.getValue().getArray().toFloatArray();
                        double sum = 0;
                        double sq = 0;
                        for (int j = 0; j < a.length; j++) {
                            double d = (double) a[j] - b[j];
                            sum += d;
                            sq += d * d;
                        }
                        double tSq = torchUpdate[2 * k + 1];
                        // Update norms agree to 1e-4 relative (plus a floor for parameters that barely move).
                        double rel = Math.abs(Math.sqrt(sq) - Math.sqrt(tSq)) / Math.max(Math.sqrt(tSq), 1e-6);
                        worst = Math.max(worst, rel);
                        if (rel > 1e-3 && Math.abs(Math.sqrt(sq) - Math.sqrt(tSq)) > 1e-6) {
                            failures.add(name + " " + policy + " " + e.getKey() + ": update norm " + Math.sqrt(sq)
                                    + " vs " + Math.sqrt(tSq));
                        }
                        if ((tSq == 0) != (sq == 0)) {
                            failures.add(name + " " + policy + " " + e.getKey() + (sq == 0 ? " did not move" : " moved"));
                        }
                        k++;
                    }
                    assertEquals(torchUpdate.length / 2, k, name + ": parameter count");
                    float[] head = params.get(arch.headName() + ".weight").getArray().toFloatArray();
                    float[] torchHead = TorchReference.readF32(dir.resolve(name + "_" + policy + "_head.f32"));
                    double d = TorchReference.maxAbsDiff(head, torchHead);
                    if (d > 1e-4) {
                        failures.add(name + " " + policy + " head weight max |diff| " + d);
                    }
                    System.out.printf("parity: %s %s 3 SGD steps: losses %s, worst update-norm rel diff %.2g,"
                            + " head max |diff| %.2g%n", name, policy, java.util.Arrays.toString(losses), worst, d);
                }
            }
        }
        assertTrue(failures.isEmpty(), String.join("\n", failures));
    }

    @Test
    void exportedModelsLoadStrictlyInTorchvision() throws Exception {
        Path ref = dev.finetune.model.FamilyParityTest.reference();
        float[] in = TorchReference.readF32(ref.resolve("input.f32"));
        Files.write(tmp.resolve("export_input.f32"), Files.readAllBytes(ref.resolve("input.f32")));
        List<String> specs = new ArrayList<>();
        Map<String, float[]> ours = new java.util.LinkedHashMap<>();
        // Every family once (the two largest, wide_resnet50_2 and vgg16_bn, exported the same way when this was written).
        for (String name : (ARCHS + ",mobilenet_v2,resnext50_32x4d").split(",")) {
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
