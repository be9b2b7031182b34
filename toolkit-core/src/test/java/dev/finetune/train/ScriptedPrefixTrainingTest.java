package dev.finetune.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.finetune.checkpoint.Checkpoints;
import dev.finetune.engine.CpuFeatures;
import dev.finetune.engine.Engines;
import dev.finetune.model.Precision;
import dev.finetune.optim.OptimizerSettings;
import dev.finetune.policy.BnPolicy;
import dev.finetune.policy.FreezePolicy;
import dev.finetune.testing.TorchReference;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * A trainable stage after the folded prefix: the prefix runs as one TorchScript call (float32) or in the bf16
 * interpreter, whose outputs libtorch makes in inference mode, and layer4 saves its input for backward. Three SGD steps
 * of a last-stage fine-tune (layer4's BNs updating their statistics), at two input shapes, with no feature cache: the
 * losses and the trained weights equal the unfolded run's (float32), or stay within bf16's error of them.
 */
class ScriptedPrefixTrainingTest {
    private static final FreezePolicy LAST_STAGE = new FreezePolicy(false, -1, List.of(FreezePolicy.Rule.train(
            "freeze.rules[0]", "layer4.*", "fc.*")), BnPolicy.AUTO);

    @Test
    void lastStageTrainsThroughTheScriptedPrefixAsThroughThePlainOne() throws Exception {
        Result plain = run(false, Precision.FP32);
        Result scripted = run(true, Precision.FP32);
        assertTrue(scripted.report.contains("scripted"), scripted.report);
        for (int i = 0; i < plain.losses.length; i++) {
            assertEquals(plain.losses[i], scripted.losses[i], 1e-4 * Math.max(1, Math.abs(plain.losses[i])),
                    "loss " + i);
        }
        double d = TorchReference.maxAbsDiff(scripted.layer4, plain.layer4);
        System.out.printf("last stage through the scripted prefix: losses %s vs %s, layer4 weight max |diff| %.3g%n",
                java.util.Arrays.toString(scripted.losses), java.util.Arrays.toString(plain.losses), d);
        assertTrue(d <= 1e-4, "layer4.1.conv2.weight differs by " + d);
        if (CpuFeatures.hasBf16()) {
            Result bf16 = run(true, Precision.BF16);
            System.out.printf("last stage through the bf16 prefix: losses %s%n", java.util.Arrays.toString(bf16.losses));
            for (int i = 0; i < plain.losses.length; i++) {
                assertEquals(plain.losses[i], bf16.losses[i], 0.05 * Math.max(1, Math.abs(plain.losses[i])),
                        "bf16 loss " + i);
            }
        }
    }

    private record Result(float[] losses, float[] layer4, String report) {}

    private static Result run(boolean fold, Precision precision) throws Exception {
        TorchReference ref = TorchReference.get();
        Engines.pytorch().setRandomSeed(7);
        try (FineTuner ft = FineTuner.builder().checkpoint(Checkpoints.read(ref.checkpoint())).policy(LAST_STAGE)
                .headClasses(3).seed(1).optimizer(OptimizerSettings.sgd(0.01, 0.9)).foldFrozenPrefix(fold)
                .prefixPrecision(precision).build();
                NDManager m = ft.manager().newSubManager()) {
            float[] losses = new float[4];
            int[][] shapes = {{4, 64}, {4, 64}, {2, 96}, {2, 96}};
            java.util.Random r = new java.util.Random(3);
            for (int i = 0; i < shapes.length; i++) {
                int n = shapes[i][0];
                int side = shapes[i][1];
                float[] px = new float[n * 3 * side * side];
                for (int j = 0; j < px.length; j++) {
                    px[j] = (float) r.nextGaussian();
                }
                long[] ys = new long[n];
                for (int j = 0; j < n; j++) {
                    ys[j] = j % 3;
                }
                NDArray x = m.create(px, new Shape(n, 3, side, side));
                losses[i] = ft.trainStep(x, m.create(ys), 0.01);
            }
            float[] w = ft.model().namedTensors().get("layer4.1.conv2.weight").getArray().toFloatArray();
            return new Result(losses, w, ft.fastPathReports().toString());
        }
    }
}
