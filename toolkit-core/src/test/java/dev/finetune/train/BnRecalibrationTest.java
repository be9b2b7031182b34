package dev.finetune.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.Shape;
import dev.finetune.checkpoint.Checkpoints;
import dev.finetune.model.Architectures;
import dev.finetune.model.Network;
import dev.finetune.optim.OptimizerSettings;
import dev.finetune.policy.BnPolicy;
import dev.finetune.policy.FreezePolicy;
import dev.finetune.testing.TorchReference;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * {@code train.update_bn_batches} ({@link BnRecalibration}) against PyTorch's {@code torch.optim.swa_utils.update_bn}
 * on a seeded mobilenet_v3_small (BN momentum 0.01, the case it is for), three batches: every layer's recomputed
 * running statistics and the batch count; then the layers' own momentum is back.
 */
class BnRecalibrationTest {
    @Test
    void equalsPyTorchsUpdateBn() throws Exception {
        Path ref = dev.finetune.model.FamilyParityTest.reference();
        Path dir = TorchReference.cached("update-bn-reference", "DONE", "update_bn_reference.py", ref.toString(),
                "mobilenet_v3_small");
        float[] xs = TorchReference.readF32(dir.resolve("batches.f32"));
        try (FineTuner ft = FineTuner.builder().arch(Architectures.parse("mobilenet_v3_small"))
                .checkpoint(Checkpoints.read(ref.resolve("mobilenet_v3_small.pth")))
                .policy(new FreezePolicy(true, -1, List.of(), BnPolicy.AUTO)).optimizer(OptimizerSettings.sgd(0.01, 0.9))
                .dropout(0f).build()) {
            NDArray all = ft.manager().create(xs, new Shape(12, 3, 32, 32));
            try (BnRecalibration r = BnRecalibration.start(ft.model())) {
                assertEquals(ft.model().batchNorms().size(), r.layers());
                for (int b = 0; b < 3; b++) {
                    r.forward(ft, all.get(b * 4 + ":" + (b * 4 + 4)), 0);
                }
            }
            double[] torch = TorchReference.readF64(dir.resolve("stats.f64"));
            List<Network.NamedBatchNorm> bns = ft.model().batchNorms();
            assertEquals(torch.length, 2 * bns.size());
            double worst = 0;
            List<String> failures = new ArrayList<>();
            for (int i = 0; i < bns.size(); i++) {
                var bn = bns.get(i).bn();
                assertEquals(3, bn.numBatchesTracked(), bns.get(i).name() + ": num_batches_tracked");
                double[] ours = {sum(bn.runningMean().getArray()), sum(bn.runningVar().getArray())};
                for (int k = 0; k < 2; k++) {
                    double d = Math.abs(ours[k] - torch[2 * i + k]) / Math.max(1, Math.abs(torch[2 * i + k]));
                    worst = Math.max(worst, d);
                    if (d > 1e-4) {
                        failures.add(bns.get(i).name() + (k == 0 ? " running_mean" : " running_var") + " sum " + ours[k]
                                + " vs " + torch[2 * i + k]);
                    }
                }
            }
            float[] first = TorchReference.readF32(dir.resolve("first.f32"));
            var bn0 = bns.get(0).bn();
            float[] ours0 = concat(bn0.runningMean().getArray().toFloatArray(), bn0.runningVar().getArray().toFloatArray());
            double d0 = TorchReference.maxAbsDiff(ours0, first);
            System.out.printf("update_bn parity: %d layers, sums worst rel diff %.2g, first layer max |diff| %.2g%n",
                    bns.size(), worst, d0);
            assertTrue(d0 < 1e-5, "first layer's statistics differ by " + d0);
            assertTrue(failures.isEmpty(), String.join("\n", failures));

            // Its own momentum (0.01) again: one more train-mode forward moves the mean by 1 % of the batch's.
            float before = bn0.runningMean().getArray().toFloatArray()[0];
            try (var g = dev.finetune.engine.Engines.noGrad()) {
                ft.model().forwardStages(ft.parameterStore(), new ai.djl.ndarray.NDList(all.get("0:4")), true, 0, 1);
            }
            float after = bn0.runningMean().getArray().toFloatArray()[0];
            assertTrue(Math.abs(after - before) < 0.05 * Math.max(1e-3, Math.abs(before)) + 1e-3,
                    "momentum restored: " + before + " -> " + after);
        }
    }

    private static double sum(NDArray a) {
        double s = 0;
        for (float v : a.toFloatArray()) {
            s += v;
        }
        return s;
    }

    private static float[] concat(float[] a, float[] b) {
        float[] out = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }
}
