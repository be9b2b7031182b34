package dev.finetune.optim;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Parameter;
import ai.djl.training.GradientCollector;
import dev.finetune.checkpoint.Checkpoints;
import dev.finetune.checkpoint.HostTensor;
import dev.finetune.engine.Engines;
import dev.finetune.engine.NativeCopies;
import dev.finetune.testing.TorchReference;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The scripted updates ({@link ScriptedUpdate}, the default) against the NDArray versions on realistic weights: all
 * 62 parameters of the Fashion-MNIST ResNet-18 (11.2 M values), five steps of random gradients at the scale of a real
 * step's, with weight decay (none on biases and norms), SGD's momentum, Nesterov and dampening, Adam's L2 and AdamW's
 * decoupled decay, a group at a tenth of the learning rate, and a learning rate that changes every step. Both versions
 * match torch.optim
 * ({@code GroupedOptimizerParityTest}); here they must agree with each other to within float32 rounding. They are not
 * bit-equal: libtorch's {@code add(alpha)} kernel rounds {@code a + alpha * b} once where a product then a sum rounds
 * twice (and likewise {@code addcmul_}, {@code addcdiv_}), so an element differs by up to an ulp of its update per step (seen: 1e-10 on weights of 0.1, where a value
 * that passes near zero shows a large relative difference). The bound is therefore relative to each tensor's scale.
 */
class ScriptedUpdateTest {
    private NDManager manager;
    private static Map<String, HostTensor> weights;

    @BeforeEach
    void open() {
        Engines.pytorch();
        manager = NDManager.newBaseManager();
        if (weights == null) {
            weights = new LinkedHashMap<>();
            Checkpoints.read(TorchReference.repoRoot().resolve("models/resnet18-fmnist-a.safetensors")).tensors()
                    .forEach((k, v) -> {
                        if ((k.endsWith("weight") || k.endsWith("bias")) && !k.contains("running")) {
                            weights.put(k, v);
                        }
                    });
        }
    }

    @AfterEach
    void close() {
        manager.close();
    }

    @ParameterizedTest
    @ValueSource(strings = {"nesterov", "momentum", "dampening", "plain", "adam", "adamw"})
    void scriptedUpdateEqualsTheNdArrayVersion(String kind) {
        List<OptimizerSettings.GroupSettings> groups = List.of(
                new OptimizerSettings.GroupSettings("layer1.*", 0.1, null));
        OptimizerSettings s = switch (kind) {
            case "nesterov" -> new OptimizerSettings("sgd", 0.05, 0.9, true, 0, 5e-4, 0.9, 0.999, 1e-8, false, groups);
            case "momentum" -> new OptimizerSettings("sgd", 0.05, 0.9, false, 0, 1e-4, 0.9, 0.999, 1e-8, true, groups);
            case "dampening" -> new OptimizerSettings("sgd", 0.05, 0.9, false, 0.1, 5e-4, 0.9, 0.999, 1e-8, false,
                    groups);
            case "adam" -> new OptimizerSettings("adam", 1e-3, 0, false, 0, 1e-4, 0.9, 0.999, 1e-8, false, groups);
            case "adamw" -> new OptimizerSettings("adamw", 2e-3, 0, false, 0, 0.05, 0.85, 0.99, 1e-6, true, groups);
            default -> new OptimizerSettings("sgd", 0.05, 0, false, 0, 0, 0.9, 0.999, 1e-8, false, List.of());
        };
        Map<String, Parameter> a = parameters();
        Map<String, Parameter> b = parameters();
        try (GroupedOptimizer scripted = optimizer(s, a);
                GroupedOptimizer ops = optimizer(s, b).scripted(false)) {
            for (int t = 0; t < 5; t++) {
                double lr = s.lr() * (1 - 0.15 * t);
                Map<String, float[]> g = gradients(t);
                backward(a, g);
                backward(b, g);
                scripted.step(lr);
                ops.step(lr);
            }
            double worst = 0;
            String where = "";
            for (String name : a.keySet()) {
                float[] x = a.get(name).getArray().toFloatArray();
                float[] y = b.get(name).getArray().toFloatArray();
                float[] g = a.get(name).getArray().getGradient().toFloatArray();
                double scale = 0;
                for (float v : y) {
                    scale = Math.max(scale, Math.abs(v));
                }
                for (int i = 0; i < x.length; i++) {
                    double d = Math.abs(x[i] - y[i]) / scale;
                    if (d > worst) {
                        worst = d;
                        where = name + "[" + i + "]: " + x[i] + " vs " + y[i] + " (tensor scale " + scale + ")";
                    }
                    if (g[i] != 0) {
                        throw new AssertionError("the scripted step left " + name + "'s gradient at " + g[i]);
                    }
                }
            }
            // Five steps of float32 roundings (2^-24 = 6e-8 each) that differ: far below 1e-6 of the tensor's scale.
            assertTrue(worst <= 1e-6, kind + ": scripted vs NDArray update differ by " + worst + " of the tensor's largest"
                    + " value at " + where);
            Map<String, HostTensor> sa = scripted.exportState();
            Map<String, HostTensor> sb = ops.exportState();
            assertEquals(sb.keySet(), sa.keySet());
            for (String k : sa.keySet()) {
                float[] x = sa.get(k).data();
                float[] y = sb.get(k).data();
                for (int i = 0; i < x.length; i++) {
                    if (!(Math.abs(x[i] - y[i]) <= 1e-5 * Math.abs(y[i]) + 1e-9)) {
                        throw new AssertionError(kind + ": state " + k + "[" + i + "] " + x[i] + " vs " + y[i]);
                    }
                }
            }
        }
    }

    private Map<String, Parameter> parameters() {
        Map<String, Parameter> out = new LinkedHashMap<>();
        weights.forEach((name, t) -> out.put(name, OptimizerFixtures.trainable(name,
                NativeCopies.floats(manager, t.data(), new Shape(t.shape())))));
        return out;
    }

    private GroupedOptimizer optimizer(OptimizerSettings s, Map<String, Parameter> params) {
        return OptimizerFixtures.overAll(s, params, manager);
    }

    /** Step {@code t}'s gradients: seeded, uniform in ±1.7e-3 (a standard deviation of 1e-3, like a real step's). */
    private static Map<String, float[]> gradients(int t) {
        java.util.SplittableRandom r = new java.util.SplittableRandom(1000 + t);
        Map<String, float[]> out = new LinkedHashMap<>();
        weights.forEach((name, w) -> {
            float[] g = new float[w.data().length];
            for (int i = 0; i < g.length; i++) {
                g[i] = (float) (1.7e-3 * (2 * r.nextDouble() - 1));
            }
            out.put(name, g);
        });
        return out;
    }

    /** Puts {@code grads} into the parameters through autograd, as d/dp sum(p * g) = g. */
    private void backward(Map<String, Parameter> params, Map<String, float[]> grads) {
        try (NDManager scratch = manager.newSubManager();
                GradientCollector gc = manager.getEngine().newGradientCollector()) {
            NDArray loss = null;
            for (Map.Entry<String, Parameter> e : params.entrySet()) {
                Parameter p = e.getValue();
                NDArray term = p.getArray().mul(NativeCopies.floats(scratch, grads.get(e.getKey()), p.getShape()))
                        .sum();
                term.attach(scratch);
                loss = loss == null ? term : loss.add(term);
                loss.attach(scratch);
            }
            gc.backward(loss);
        }
    }
}
