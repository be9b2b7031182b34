package dev.finetune.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.ParameterStore;
import dev.finetune.checkpoint.Checkpoints;
import dev.finetune.engine.Engines;
import dev.finetune.model.FastPathReport;
import dev.finetune.model.FoldedPrefix;
import dev.finetune.model.GuardedPrefix;
import dev.finetune.model.ResNet;
import dev.finetune.policy.BnPolicy;
import dev.finetune.policy.FreezePolicy;
import dev.finetune.testing.TorchReference;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

/**
 * Every execution path of the network against the plain eager network and against PyTorch 1.13
 * ({@code scripts/reference/equivalence_reference.py}), on any x86-64 host:
 *
 * <ul>
 *   <li>plain eager, stage by stage, and the eval logits;
 *   <li>stage-scoped inference ({@code predictLogits}, {@link dev.finetune.model.StepScopes});
 *   <li>BN-folded stages, NCHW and channels-last, each stage on the plain network's input to it;
 *   <li>the production frozen-prefix path ({@link FineTuner#prefixFeatures}: folded, channels-last, guarded), which
 *       is what the feature cache stores, at every cut (stem … layer4), and the logits computed from it.
 * </ul>
 *
 * <p>At input sides 32, 64, 97 and 224, batch 1 and 3, with three weight sets: torchvision's initialization, the
 * embedded trained checkpoint and randomized BN statistics. Tolerance, elementwise:
 * {@code max|diff| <= 1e-4 * max(1, max|ref|)}. Raw channels-last convolutions may be wrong on a host (that is why the
 * guard exists): where they are, the test requires the guard to have moved that stage to NCHW instead of failing.
 */
class EquivalenceMatrixTest {
    private static final double TOL = GuardedPrefix.TOLERANCE;
    private static final List<String> WEIGHTS = List.of("init", "embedded", "randbn");
    private static final int[] SIDES = {32, 64, 97, 224};
    private static final int[] BATCHES = {1, 3};
    private static final List<String> STAGES = List.of("stem", "layer1", "layer2", "layer3", "layer4", "head");

    private static final Map<String, FineTuner> MODELS = new LinkedHashMap<>();
    private static final Map<String, FoldedPrefix> FOLDS = new LinkedHashMap<>();
    /** The plain network's stage outputs per weights/side/batch, from the input tests, for the cut tests. */
    private static final Map<String, List<NDArray>> PLAIN = new LinkedHashMap<>();
    private static final Map<String, NDManager> PLAIN_MANAGER = new LinkedHashMap<>();
    /** weights/stage pairs whose raw channels-last fold was wrong on this host (dynamic tests run in order). */
    private static final java.util.Set<String> CHANNELS_LAST_WRONG = new java.util.HashSet<>();
    private static Ref ref;

    @TestFactory
    Stream<DynamicTest> everyPathEqualsPlainAndPyTorch() throws Exception {
        ref = Ref.get();
        List<DynamicTest> tests = new ArrayList<>();
        for (String w : WEIGHTS) {
            for (int side : SIDES) {
                for (int batch : BATCHES) {
                    tests.add(DynamicTest.dynamicTest(w + " " + side + "x" + side + " batch " + batch
                            + ": plain, stage-scoped, folded stages", () -> checkInput(w, side, batch)));
                }
            }
            for (int k = 1; k <= 5; k++) {
                int cut = k;
                tests.add(DynamicTest.dynamicTest(w + " frozen up to " + STAGES.get(k)
                        + ": guarded prefix and cached features at every size and batch", () -> checkCut(w, cut)));
            }
        }
        return tests.stream();
    }

    @AfterAll
    static void closeModels() {
        PLAIN_MANAGER.values().forEach(NDManager::close);
        PLAIN_MANAGER.clear();
        FOLDS.values().forEach(FoldedPrefix::close);
        FOLDS.clear();
        MODELS.values().forEach(FineTuner::close);
        MODELS.clear();
    }

    /** One fine-tuner per weight set, shared by its sizes and batches (loading a checkpoint costs more than a test). */
    private static FineTuner model(String weights) {
        return MODELS.computeIfAbsent(weights, w -> FineTuner.builder()
                .checkpoint(Checkpoints.read(ref.dir.resolve(w + ".pth")))
                .policy(FreezePolicy.linearProbe())
                .build());
    }

    /** Stage {@code s} of a weight set folded in {@code layout}, folded once (a fold depends on weights only). */
    private static FoldedPrefix fold(String weights, int s, FoldedPrefix.Layout layout) {
        FineTuner ft = model(weights);
        return FOLDS.computeIfAbsent(weights + "/" + s + "/" + layout,
                k -> FoldedPrefix.fold((ResNet) ft.model(), s, s + 1, layout, ft.manager()));
    }

    private static Map<String, NDArray> torch(NDManager m, String weights, int side, int batch) throws IOException {
        Map<String, NDArray> torch = new LinkedHashMap<>();
        for (String k : List.of("input", "stem", "layer1", "layer2", "layer3", "layer4", "logits")) {
            torch.put(k, ref.array(m, weights + "_" + side + "_" + k).get(new NDIndex("0:" + batch)));
        }
        return torch;
    }

    /** Plain eager, stage-scoped inference and each folded stage, for one input. */
    private static void checkInput(String weights, int side, int batch) throws IOException {
        Engines.pytorch();
        // The fine-tuner is built with the linear probe and each weight set's cut tests run after its input tests:
        // every BN here keeps its statistics, as folding needs.
        FineTuner ft = model(weights);
        try (NDManager m = ft.manager().newSubManager()) {
            ResNet model = (ResNet) ft.model();
            ParameterStore ps = ft.parameterStore();
            Map<String, NDArray> torch = torch(m, weights, side, batch);
            NDArray x = torch.get("input");
            Diffs d = new Diffs(weights + " " + side + "x" + side + " batch " + batch);

            // Plain eager, stage by stage on its own outputs (kept for the cut tests): run with grad mode on, so that
            // nothing is scoped or freed early (StepScopes acts only without autograd) — the reference path.
            List<NDArray> plain = new ArrayList<>();
            NDManager keep = PLAIN_MANAGER.computeIfAbsent(weights, w -> ft.manager().newSubManager());
            try (var g = Engines.gradEnabled()) {
                NDArray h = x;
                for (int s = 0; s < 6; s++) {
                    h = model.forwardStages(ps, new NDList(h), false, s, s + 1).singletonOrThrow();
                    d.check("plain " + STAGES.get(s) + " vs torch", torchOut(torch, s), h);
                    NDArray kept = h.duplicate();
                    kept.attach(keep);
                    plain.add(kept);
                }
            }
            // Stage-scoped inference: no autograd, each stage's and each block's intermediates freed once consumed.
            try (var g = Engines.noGrad()) {
                NDArray scoped = ft.predictLogits(x);
                d.check("stage-scoped logits vs torch", torch.get("logits"), scoped);
                d.check("stage-scoped logits vs plain", plain.get(5), scoped);
            }
            PLAIN.put(weights + "/" + side + "/" + batch, plain);

            // Folded stages, each on the plain network's input to that stage. Raw channels-last may be wrong on a
            // host: then the guard (checkCut) must have moved that stage to NCHW.
            for (FoldedPrefix.Layout layout : List.of(FoldedPrefix.Layout.CONTIGUOUS,
                    FoldedPrefix.Layout.CHANNELS_LAST)) {
                for (int s = 0; s < 5; s++) {
                    NDArray in = s == 0 ? x : plain.get(s - 1);
                    NDArray out = fold(weights, s, layout).forward(in);
                    String what = "folded " + layout + " " + STAGES.get(s);
                    if (layout == FoldedPrefix.Layout.CHANNELS_LAST && !d.within(torchOut(torch, s), out)) {
                        CHANNELS_LAST_WRONG.add(weights + "/" + s);
                        d.note(what + ": raw channels-last is wrong on this host ("
                                + d.relative(torchOut(torch, s), out) + "); the guard must avoid it");
                        continue;
                    }
                    d.check(what + " vs torch", torchOut(torch, s), out);
                    d.check(what + " vs plain", plain.get(s), out);
                }
            }
            System.out.println(d);
            d.assertAll();
        }
    }

    /**
     * The production path with stages {@code [0, k)} frozen: the guarded, folded, channels-last prefix that training
     * steps and the feature cache run ({@link FineTuner#prefixFeatures}), and the logits computed from its output, at
     * every size and batch.
     */
    private static void checkCut(String weights, int k) throws IOException {
        Engines.pytorch();
        FineTuner ft = model(weights);
        ft.applyPolicy(new FreezePolicy(true, k - 1, List.of(), BnPolicy.AUTO));
        ResNet model = (ResNet) ft.model();
        ParameterStore ps = ft.parameterStore();
        Diffs d = new Diffs(weights + " frozen up to " + STAGES.get(k));
        for (int side : SIDES) {
            for (int batch : BATCHES) {
                try (NDManager m = ft.manager().newSubManager()) {
                    Map<String, NDArray> torch = torch(m, weights, side, batch);
                    NDArray x = torch.get("input");
                    String at = side + "x" + side + " batch " + batch + ": ";
                    NDArray features = ft.prefixFeatures(x, k);
                    d.check(at + "cache features vs torch", torchOut(torch, k - 1), features);
                    try (var g = Engines.noGrad()) {
                        NDArray plain = PLAIN.get(weights + "/" + side + "/" + batch).get(k - 1);
                        d.check(at + "cache features vs plain", plain, features);
                        NDArray logits = model.forwardStages(ps, new NDList(features), false, k, 6)
                                .singletonOrThrow();
                        d.check(at + "logits from the cache vs torch", torch.get("logits"), logits);
                    }
                }
            }
        }
        List<FastPathReport> reports = ft.fastPathReports();
        FastPathReport r = reports.get(reports.size() - 1);
        for (int s = 0; s < k; s++) {
            if (CHANNELS_LAST_WRONG.contains(weights + "/" + s)) {
                assertTrue(!r.inUse().contains("channels-last: ") || !stageListed(r.inUse(), s),
                        "raw channels-last " + STAGES.get(s) + " is wrong here, yet the guard runs it: " + r.toMap());
            }
        }
        assertEquals(SIDES.length * BATCHES.length, r.checks().stream().filter(FastPathReport.Check::passed)
                .map(FastPathReport.Check::input).distinct().count(), "every input shape checked once: " + r.toMap());
        d.note("guard: " + r.inUse() + (r.degraded() ? " " + r.fallbacks() : ""));
        if (k == 5) {
            PLAIN_MANAGER.remove(weights).close();
        }
        System.out.println(d);
        d.assertAll();
    }

    /** Whether the channels-last part of {@code inUse} lists stage {@code s}. */
    private static boolean stageListed(String inUse, int s) {
        int start = inUse.indexOf("channels-last: ");
        int end = inUse.indexOf(';', start);
        String cl = inUse.substring(start, end < 0 ? inUse.length() : end);
        return List.of(cl.substring("channels-last: ".length()).split(", ")).contains(STAGES.get(s));
    }

    private static NDArray torchOut(Map<String, NDArray> torch, int stage) {
        return torch.get(stage == 5 ? "logits" : STAGES.get(stage));
    }

    /** Collects relative differences; fails at the end with all of them. */
    private static final class Diffs {
        private final String title;
        private final List<String> lines = new ArrayList<>();
        private final List<String> failures = new ArrayList<>();
        private double worst;

        Diffs(String title) {
            this.title = title;
        }

        void check(String what, NDArray expected, NDArray actual) {
            assertEquals(expected.getShape(), actual.getShape(), title + ": " + what);
            double scale = Math.max(1, expected.abs().max().getFloat());
            double diff = expected.sub(actual).abs().max().getFloat();
            worst = Math.max(worst, diff / scale);
            String line = String.format("%-44s max|diff| %.2e  scale %.3g", what, diff, scale);
            lines.add(line);
            if (!(diff <= TOL * scale)) {
                failures.add(line);
            }
        }

        boolean within(NDArray expected, NDArray actual) {
            double scale = Math.max(1, expected.abs().max().getFloat());
            return expected.sub(actual).abs().max().getFloat() <= TOL * scale;
        }

        String relative(NDArray expected, NDArray actual) {
            double scale = Math.max(1, expected.abs().max().getFloat());
            return String.format("max|diff| %.3g at scale %.3g", expected.sub(actual).abs().max().getFloat(), scale);
        }

        void note(String s) {
            lines.add("note: " + s);
        }

        void assertAll() {
            assertTrue(failures.isEmpty(), title + ": outside max|diff| <= 1e-4 * max(1, max|ref|):\n"
                    + String.join("\n", failures));
        }

        @Override
        public String toString() {
            return String.format("== %s: worst relative difference %.2e over %d comparisons%n  %s", title, worst,
                    lines.size(), String.join("\n  ", lines));
        }
    }

    /** The reference arrays, generated once per test JVM into target/equivalence-reference. */
    private static final class Ref {
        private static Ref instance;
        final Path dir;
        final com.fasterxml.jackson.databind.JsonNode index;

        private Ref(Path dir) throws IOException {
            this.dir = dir;
            this.index = new com.fasterxml.jackson.databind.ObjectMapper()
                    .readTree(dir.resolve("reference.json").toFile()).get("arrays");
        }

        static synchronized Ref get() throws IOException, InterruptedException {
            if (instance == null) {
                Path dir = TorchReference.cached("equivalence-reference", "reference.json",
                        "equivalence_reference.py",
                        TorchReference.repoRoot().resolve("models/resnet18-fmnist-a.safetensors").toString());
                instance = new Ref(dir);
            }
            return instance;
        }

        NDArray array(NDManager m, String key) throws IOException {
            var s = index.get(key);
            long[] shape = new long[s.size()];
            for (int i = 0; i < shape.length; i++) {
                shape[i] = s.get(i).asLong();
            }
            byte[] bytes = Files.readAllBytes(dir.resolve("arrays").resolve(key + ".f32"));
            float[] v = new float[bytes.length / 4];
            java.nio.ByteBuffer.wrap(bytes).order(java.nio.ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(v);
            return m.create(v, new Shape(shape));
        }
    }
}
