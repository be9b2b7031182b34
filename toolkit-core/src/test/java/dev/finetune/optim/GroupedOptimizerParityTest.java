package dev.finetune.optim;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Parameter;
import ai.djl.training.GradientCollector;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.finetune.ErrorKind;
import dev.finetune.FinetuneException;
import dev.finetune.checkpoint.HostTensor;
import dev.finetune.engine.Engines;
import dev.finetune.policy.BnPolicy;
import dev.finetune.policy.FreezePlan;
import dev.finetune.policy.FreezePolicy;
import dev.finetune.policy.TensorInfo;
import dev.finetune.testing.TorchReference;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@link GroupedOptimizer} follows {@code torch.optim} step for step: SGD (momentum, Nesterov, dampening, L2), Adam
 * (L2) and AdamW (decoupled), with parameter groups and a learning rate that changes every step. Reference
 * trajectories come from {@code scripts/reference/optim_reference.py} run by Debian's torch; the gradients are fed in
 * through autograd as d/dp sum(p * g) = g.
 */
class GroupedOptimizerParityTest {
    /** Relative tolerance against PyTorch (float32 arithmetic on both sides; values are O(0.1..1)). */
    private static final double REL = 1e-6;
    /** Absolute floor for values that pass close to zero, about one float32 ulp at 1. */
    private static final double ABS = 1e-7;

    private static JsonNode ref;
    private NDManager manager;

    @BeforeAll
    static void reference() throws IOException, InterruptedException {
        Path dir = TorchReference.cached("optim-reference", "optim_reference.json", "optim_reference.py");
        ref = new ObjectMapper().readTree(dir.resolve("optim_reference.json").toFile());
    }

    @BeforeEach
    void open() {
        Engines.pytorch();
        manager = NDManager.newBaseManager();
    }

    @AfterEach
    void close() {
        manager.close();
    }

    @ParameterizedTest
    @ValueSource(strings = {"sgd_momentum", "sgd_nesterov", "sgd_dampening", "sgd_plain", "adam", "adamw",
        "adamw_decay_all"})
    void fiveStepsMatchTorchOptim(String name) {
        JsonNode c = ref.get("cases").get(name);
        assertTrue(c != null, "case " + name + " missing from the reference");
        Map<String, Parameter> params = parameters(initialValues());
        try (GroupedOptimizer opt = optimizer(settings(c.get("settings")), params)) {
            int steps = ref.get("steps").asInt();
            for (int t = 0; t < steps; t++) {
                step(opt, params, t);
                for (String p : params.keySet()) {
                    assertClose(floats(c.get("after").get(p).get(t)), values(params.get(p)),
                            name + ": " + p + " after step " + (t + 1));
                }
            }
            assertStateMatchesTorch(name, c.get("state"), opt.exportState());
        }
    }

    /** The NDArray versions (the reference for the scripted default, {@link ScriptedUpdate}) match torch too. */
    @ParameterizedTest
    @ValueSource(strings = {"sgd_momentum", "sgd_nesterov", "sgd_dampening", "sgd_plain", "adam", "adamw",
        "adamw_decay_all"})
    void ndArrayUpdateMatchesTorchOptim(String name) {
        JsonNode c = ref.get("cases").get(name);
        Map<String, Parameter> params = parameters(initialValues());
        try (GroupedOptimizer opt = optimizer(settings(c.get("settings")), params).scripted(false)) {
            for (int t = 0; t < ref.get("steps").asInt(); t++) {
                step(opt, params, t);
                for (String p : params.keySet()) {
                    assertClose(floats(c.get("after").get(p).get(t)), values(params.get(p)),
                            name + " (NDArray ops): " + p + " after step " + (t + 1));
                }
            }
            assertStateMatchesTorch(name, c.get("state"), opt.exportState());
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"sgd_momentum", "sgd_nesterov", "adam", "adamw"})
    void exportImportContinuesIdentically(String name) {
        JsonNode c = ref.get("cases").get(name);
        OptimizerSettings s = settings(c.get("settings"));
        Map<String, Parameter> a = parameters(initialValues());
        try (GroupedOptimizer first = optimizer(s, a)) {
            for (int t = 0; t < 3; t++) {
                step(first, a, t);
            }
            LinkedHashMap<String, HostTensor> state = first.exportState();
            // A second optimizer over copies of the parameters, as a resumed run builds it.
            Map<String, float[]> now = new LinkedHashMap<>();
            a.forEach((n, p) -> now.put(n, values(p)));
            Map<String, Parameter> b = parameters(now);
            try (GroupedOptimizer resumed = optimizer(s, b)) {
                resumed.importState(state);
                assertSameState(state, resumed.exportState());
                for (int t = 3; t < 5; t++) {
                    step(first, a, t);
                    step(resumed, b, t);
                }
                for (String p : a.keySet()) {
                    assertArrayEquals(values(a.get(p)), values(b.get(p)), name + ": " + p + " after resume");
                    assertClose(floats(c.get("after").get(p).get(4)), values(b.get(p)),
                            name + ": " + p + " after resume vs torch");
                }
                assertSameState(first.exportState(), resumed.exportState());
            }
        }
    }

    @Test
    void importWithoutStateRestartsAdamBiasCorrection() {
        // Without the state (e.g. a checkpoint from before the optimizer was saved) Adam starts over at step 1:
        // this pins down that the import, not luck, carries the continuation above.
        JsonNode c = ref.get("cases").get("adam");
        OptimizerSettings s = settings(c.get("settings"));
        Map<String, Parameter> a = parameters(initialValues());
        try (GroupedOptimizer first = optimizer(s, a)) {
            for (int t = 0; t < 3; t++) {
                step(first, a, t);
            }
            Map<String, float[]> now = new LinkedHashMap<>();
            a.forEach((n, p) -> now.put(n, values(p)));
            Map<String, Parameter> b = parameters(now);
            try (GroupedOptimizer fresh = optimizer(s, b)) {
                step(first, a, 3);
                step(fresh, b, 3);
                assertTrue(!java.util.Arrays.equals(values(a.get("body.weight")), values(b.get("body.weight"))));
            }
        }
    }

    @Test
    void exportedStateIsNamedPerParameter() {
        JsonNode c = ref.get("cases").get("adam");
        Map<String, Parameter> params = parameters(initialValues());
        try (GroupedOptimizer opt = optimizer(settings(c.get("settings")), params)) {
            step(opt, params, 0);
            LinkedHashMap<String, HostTensor> state = opt.exportState();
            assertEquals(List.of("body.weight.exp_avg", "body.weight.exp_avg_sq", "body.weight.step",
                    "body.bias.exp_avg", "body.bias.exp_avg_sq", "body.bias.step",
                    "head.weight.exp_avg", "head.weight.exp_avg_sq", "head.weight.step",
                    "head.bias.exp_avg", "head.bias.exp_avg_sq", "head.bias.step"), List.copyOf(state.keySet()));
            assertArrayEquals(new long[] {4, 3}, state.get("body.weight.exp_avg").shape());
            assertEquals("I64", state.get("body.weight.step").sourceDtype());
            assertEquals(1.0f, state.get("body.weight.step").data()[0]);
            assertEquals(List.copyOf(params.keySet()), opt.namesWithState());
        }
    }

    @Test
    void importIgnoresEntriesOfOtherParameters() {
        JsonNode c = ref.get("cases").get("sgd_momentum");
        Map<String, Parameter> params = parameters(initialValues());
        try (GroupedOptimizer opt = optimizer(settings(c.get("settings")), params)) {
            opt.importState(Map.of("layer1.0.conv1.weight.momentum_buffer", HostTensor.of(new long[] {1},
                    new float[] {1})));
            assertEquals(List.of(), opt.namesWithState());
        }
    }

    @Test
    void plainSgdKeepsNoBuffers() {
        JsonNode c = ref.get("cases").get("sgd_plain");
        Map<String, Parameter> params = parameters(initialValues());
        try (GroupedOptimizer opt = optimizer(settings(c.get("settings")), params)) {
            step(opt, params, 0);
            assertEquals(List.of(), opt.namesWithState());
            assertTrue(opt.exportState().keySet().stream().allMatch(k -> k.endsWith(".step")));
        }
    }

    @Test
    void stepZeroesTheGradients() {
        JsonNode c = ref.get("cases").get("sgd_momentum");
        Map<String, Parameter> params = parameters(initialValues());
        try (GroupedOptimizer opt = optimizer(settings(c.get("settings")), params)) {
            step(opt, params, 0);
            for (Parameter p : params.values()) {
                float[] g = p.getArray().getGradient().toFloatArray();
                assertArrayEquals(new float[g.length], g, p.getName());
            }
        }
    }

    @Test
    void parameterFrozenAfterBuildIsAHardFailure() {
        JsonNode c = ref.get("cases").get("sgd_momentum");
        Map<String, Parameter> params = parameters(initialValues());
        try (GroupedOptimizer opt = optimizer(settings(c.get("settings")), params)) {
            gradients(params, 0);
            params.get("head.weight").freeze(true);
            FinetuneException e = assertThrows(FinetuneException.class, () -> opt.step(0.1));
            assertEquals(ErrorKind.INTERNAL, e.kind());
            assertEquals("invariant broken: frozen parameter head.weight is in the optimizer; rebuild the optimizer"
                    + " after changing the freeze policy", e.getMessage());
        }
    }

    @Test
    void frozenParametersAreNotInTheOptimizer() {
        Map<String, Parameter> params = parameters(initialValues());
        List<TensorInfo> infos = new ArrayList<>();
        params.forEach((n, p) -> infos.add(new TensorInfo(n, p.getShape().getShape(), false, null)));
        FreezePlan plan = new FreezePolicy(false, -1, List.of(FreezePolicy.Rule.train("freeze.rules[0]", "head.*")),
                BnPolicy.AUTO).plan(infos);
        plan.decisions().forEach(d -> params.get(d.name()).freeze(!d.trainable()));
        float[] body = values(params.get("body.weight"));
        try (GroupedOptimizer opt = GroupedOptimizer.build(OptimizerSettings.sgd(0.1, 0.9), params, plan, manager)) {
            assertEquals(List.of("head.weight", "head.bias"), opt.parameterNames());
            // Gradients only for the trainable ones (autograd gives none to frozen leaves).
            try (GradientCollector gc = manager.getEngine().newGradientCollector()) {
                NDArray loss = params.get("head.weight").getArray().sum().add(params.get("head.bias").getArray().sum())
                        .add(params.get("body.weight").getArray().sum());
                gc.backward(loss);
            }
            opt.step(0.1);
            assertArrayEquals(body, values(params.get("body.weight")), "frozen parameter moved");
            assertEquals(List.of("head.weight", "head.bias"), opt.namesWithState());
        }
    }

    // ---------------------------------------------------------------- helpers

    private static OptimizerSettings settings(JsonNode s) {
        List<OptimizerSettings.GroupSettings> groups = new ArrayList<>();
        for (JsonNode g : s.path("groups")) {
            groups.add(new OptimizerSettings.GroupSettings(
                    g.get("match").asText(),
                    g.has("lr_mult") ? g.get("lr_mult").asDouble() : null,
                    g.has("weight_decay") ? g.get("weight_decay").asDouble() : null));
        }
        JsonNode betas = s.get("betas");
        return new OptimizerSettings(
                s.get("name").asText(),
                s.get("lr").asDouble(),
                s.path("momentum").asDouble(0),
                s.path("nesterov").asBoolean(false),
                s.path("dampening").asDouble(0),
                s.path("weight_decay").asDouble(0),
                betas == null ? 0.9 : betas.get(0).asDouble(),
                betas == null ? 0.999 : betas.get(1).asDouble(),
                s.path("eps").asDouble(1e-8),
                s.path("decay_norm_and_bias").asBoolean(false),
                groups);
    }

    private static Map<String, float[]> initialValues() {
        Map<String, float[]> out = new LinkedHashMap<>();
        ref.get("init").fields().forEachRemaining(e -> out.put(e.getKey(), floats(e.getValue())));
        return out;
    }

    /** Trainable DJL parameters with the given values, in the reference's order. */
    private Map<String, Parameter> parameters(Map<String, float[]> values) {
        Map<String, Parameter> out = new LinkedHashMap<>();
        values.forEach((name, v) -> out.put(name, OptimizerFixtures.trainable(name,
                manager.create(v, new Shape(shape(name))))));
        return out;
    }

    private GroupedOptimizer optimizer(OptimizerSettings s, Map<String, Parameter> params) {
        return OptimizerFixtures.overAll(s, params, manager);
    }

    /** Gradients of step {@code t}, then one update at that step's base learning rate. */
    private void step(GroupedOptimizer opt, Map<String, Parameter> params, int t) {
        gradients(params, t);
        opt.step(ref.get("lrs").get(t).asDouble());
    }

    /** Puts the reference gradient of step {@code t} into every parameter through autograd. */
    private void gradients(Map<String, Parameter> params, int t) {
        try (NDManager scratch = manager.newSubManager();
                GradientCollector gc = manager.getEngine().newGradientCollector()) {
            NDArray loss = null;
            for (Map.Entry<String, Parameter> e : params.entrySet()) {
                NDArray g = scratch.create(floats(ref.get("grads").get(e.getKey()).get(t)),
                        new Shape(shape(e.getKey())));
                NDArray term = e.getValue().getArray().mul(g).sum();
                term.attach(scratch);
                loss = loss == null ? term : loss.add(term);
                loss.attach(scratch);
            }
            gc.backward(loss);
        }
    }

    private static long[] shape(String name) {
        JsonNode s = ref.get("shapes").get(name);
        long[] out = new long[s.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = s.get(i).asLong();
        }
        return out;
    }

    private static float[] floats(JsonNode a) {
        float[] out = new float[a.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = (float) a.get(i).asDouble();
        }
        return out;
    }

    private static float[] values(Parameter p) {
        return p.getArray().toFloatArray();
    }

    private static void assertClose(float[] expected, float[] actual, String what) {
        assertEquals(expected.length, actual.length, what + ": length");
        for (int i = 0; i < expected.length; i++) {
            double tol = REL * Math.abs(expected[i]) + ABS;
            assertTrue(Math.abs(expected[i] - actual[i]) <= tol,
                    what + "[" + i + "]: torch " + expected[i] + ", ours " + actual[i]);
        }
    }

    private static void assertStateMatchesTorch(String name, JsonNode torch, Map<String, HostTensor> ours) {
        torch.fields().forEachRemaining(e -> {
            String p = e.getKey();
            JsonNode st = e.getValue();
            for (String k : List.of("momentum_buffer", "exp_avg", "exp_avg_sq")) {
                if (st.has(k)) {
                    HostTensor t = ours.get(p + "." + k);
                    assertTrue(t != null, name + ": no " + p + "." + k + " in " + ours.keySet());
                    assertClose(floats(st.get(k)), t.data(), name + ": " + p + "." + k);
                } else {
                    assertTrue(!ours.containsKey(p + "." + k), name + ": unexpected " + p + "." + k);
                }
            }
            assertEquals(st.get("step").asInt(), (int) ours.get(p + ".step").data()[0], name + ": " + p + ".step");
        });
    }

    private static void assertSameState(Map<String, HostTensor> expected, Map<String, HostTensor> actual) {
        assertEquals(expected.keySet(), actual.keySet());
        expected.forEach((k, v) -> {
            assertArrayEquals(v.shape(), actual.get(k).shape(), k);
            assertArrayEquals(v.data(), actual.get(k).data(), k);
        });
    }
}
