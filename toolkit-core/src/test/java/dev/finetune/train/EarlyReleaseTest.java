package dev.finetune.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.finetune.model.Architectures;
import dev.finetune.optim.OptimizerSettings;
import dev.finetune.policy.BnPolicy;
import dev.finetune.policy.FreezePolicy;
import dev.finetune.testing.NativeNoise;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Freeing a training forward's intermediates once consumed ({@code StepScopes.releasing}, on by default) changes no
 * result: two SGD steps with every layer training (BN in train mode) give bit-identical losses, parameters and running
 * statistics with release on — while another thread allocates and fills native memory, so that a freed tensor autograd
 * still needed would read garbage — and with release off, in quiet. One architecture per block kind that releases.
 */
class EarlyReleaseTest {
    @ParameterizedTest
    @ValueSource(strings = {"resnet18", "resnet50", "densenet121", "mobilenet_v3_small", "convnext_tiny",
        "regnet_y_400mf"})
    void releasingIntermediatesChangesNoStep(String arch) throws Exception {
        // scripts/test.sh: one architecture per kind of residual join; .ci/run (exhaustive): all six.
        org.junit.jupiter.api.Assumptions.assumeTrue(Boolean.getBoolean("finetune.test.exhaustive")
                || List.of("resnet18", "densenet121", "mobilenet_v3_small").contains(arch), "exhaustive only");
        Run plain = run(arch, false, false);
        Run released = run(arch, true, true);
        assertArrayEquals(plain.losses, released.losses, 0f, arch + ": losses");
        assertEquals(plain.state.keySet(), released.state.keySet());
        plain.state.forEach((name, v) -> assertArrayEquals(v, released.state.get(name), 0f, arch + ": " + name));
        System.out.printf("early release: %s losses %s, %d tensors equal%n", arch,
                java.util.Arrays.toString(released.losses), released.state.size());
    }

    private record Run(float[] losses, Map<String, float[]> state) {}

    private static Run run(String arch, boolean release, boolean noise) throws Exception {
        try (FineTuner ft = FineTuner.builder().arch(Architectures.parse(arch)).headClasses(5).seed(0)
                .policy(new FreezePolicy(true, -1, List.of(), BnPolicy.AUTO))
                .optimizer(OptimizerSettings.sgd(0.01, 0.9)).releaseIntermediates(release).build()) {
            Random r = new Random(0);
            float[] xs = new float[4 * 3 * 32 * 32];
            for (int i = 0; i < xs.length; i++) {
                xs[i] = (float) r.nextGaussian();
            }
            long[] ys = {0, 1, 2, 3};
            float[] losses = new float[2];
            try (NativeNoise n = NativeNoise.start(noise)) {
                for (int s = 0; s < losses.length; s++) {
                    ft.manager().getEngine().setRandomSeed(s);
                    try (NDManager m = ft.manager().newSubManager()) {
                        NDArray x = m.create(xs, new Shape(4, 3, 32, 32));
                        losses[s] = ft.trainStep(x, m.create(ys), 0.01);
                    }
                }
            }
            Map<String, float[]> state = new LinkedHashMap<>();
            ft.model().namedTensors().forEach((name, p) -> state.put(name, p.getArray().toFloatArray()));
            return new Run(losses, state);
        }
    }
}
