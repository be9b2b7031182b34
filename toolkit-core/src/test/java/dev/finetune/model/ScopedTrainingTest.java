package dev.finetune.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Parameter;
import ai.djl.training.GradientCollector;
import ai.djl.training.ParameterStore;
import dev.finetune.engine.Engines;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Freeing each stage's intermediates during a training forward ({@link Network#forwardStages}, {@link StepScopes})
 * changes nothing: the loss and every parameter's gradient are bit for bit those of the same forward that keeps every
 * intermediate until the step ends, and the freed run ends with fewer arrays alive before the backward. One
 * architecture per block kind, train-mode BatchNorm, small inputs.
 */
class ScopedTrainingTest {
    @ParameterizedTest
    @ValueSource(strings = {"resnet18", "mobilenet_v3_small", "efficientnet_b0", "convnext_tiny", "densenet121"})
    void gradientsEqualTheUnscopedForward(String name) {
        Engines.pytorch();
        try (NDManager m = NDManager.newBaseManager()) {
            Network net = Architectures.parse(name).create(4).initialize(m);
            net.setDropout(0);
            net.namedModules().values().forEach(b -> {
                if (b instanceof InvertedResidual r) {
                    r.stochasticDepth().setRate(0);
                }
                if (b instanceof CNBlock c) {
                    c.stochasticDepth().setRate(0);
                }
            });
            net.namedTensors().values().forEach(p -> {
                if (p.requiresGradient()) {
                    p.getArray().setRequiresGradient(true);
                }
            });
            ParameterStore ps = new ParameterStore(m, false);
            NDArray x = m.randomNormal(new Shape(3, 3, 48, 48));
            NDArray y = m.create(new long[] {0, 3, 1});
            int stages = net.stageNames().size();
            Map<String, float[]> scoped = new LinkedHashMap<>();
            Map<String, float[]> kept = new LinkedHashMap<>();
            float lossScoped;
            float lossKept;
            int aliveScoped;
            int aliveKept;
            try (NDManager step = m.newSubManager()) {
                NDArray in = x.duplicate();
                in.attach(step);
                try (GradientCollector gc = m.getEngine().newGradientCollector()) {
                    NDArray logits = net.forwardStages(ps, new NDList(in), true, 0, stages).singletonOrThrow();
                    aliveScoped = step.getManagedArrays().size();
                    NDArray loss = new dev.finetune.train.CrossEntropy(0, null).evaluate(y, logits);
                    lossScoped = loss.getFloat();
                    gc.backward(loss);
                }
                grads(net, scoped);
            }
            try (NDManager step = m.newSubManager()) {
                NDArray in = x.duplicate();
                in.attach(step);
                try (GradientCollector gc = m.getEngine().newGradientCollector()) {
                    NDList h = new NDList(in);
                    for (int s = 0; s < stages; s++) {
                        h = net.runStage(s, ps, h, true);
                    }
                    aliveKept = step.getManagedArrays().size();
                    NDArray loss = new dev.finetune.train.CrossEntropy(0, null).evaluate(y, h.singletonOrThrow());
                    lossKept = loss.getFloat();
                    gc.backward(loss);
                }
                grads(net, kept);
            }
            assertEquals(lossKept, lossScoped, 0f, name + ": loss");
            assertEquals(kept.keySet(), scoped.keySet());
            kept.forEach((k, g) -> assertArrayEquals(g, scoped.get(k), 0f, name + ": gradient of " + k));
            assertTrue(aliveScoped < aliveKept / 4, name + ": arrays alive before the backward, freed " + aliveScoped
                    + " against " + aliveKept);
            System.out.printf("scoped training: %s, %d gradients equal bit for bit; arrays alive before backward %d"
                    + " (kept: %d)%n", name, kept.size(), aliveScoped, aliveKept);
        }
    }

    private static void grads(Network net, Map<String, float[]> out) {
        for (Map.Entry<String, Parameter> e : net.namedTensors().entrySet()) {
            NDArray a = e.getValue().getArray();
            if (a.hasGradient()) {
                out.put(e.getKey(), a.getGradient().toFloatArray());
                a.getGradient().subi(a.getGradient());
            }
        }
    }
}
