package dev.finetune.weights;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDManager;
import ai.djl.nn.Parameter;
import dev.finetune.ErrorKind;
import dev.finetune.checkpoint.Checkpoint;
import dev.finetune.checkpoint.CheckpointException;
import dev.finetune.checkpoint.CheckpointFormat;
import dev.finetune.checkpoint.HostTensor;
import dev.finetune.engine.Engines;
import dev.finetune.model.ResNet;
import dev.finetune.model.ResNetArch;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.UnaryOperator;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * {@link WeightLoader} on synthetic checkpoints shaped like torchvision's resnet18 state_dict (122 keys: 102 tensors
 * and 20 {@code num_batches_tracked} counters), altered one way per test.
 */
class WeightLoaderTest {
    private static final Path SOURCE = Path.of("synthetic.pth");
    private static final String NL = System.lineSeparator();

    private static NDManager manager;
    private static ResNet model;
    /** A clean torchvision-style state_dict for {@link #model}; tests copy the map, never the arrays. */
    private static LinkedHashMap<String, HostTensor> stateDict;

    @BeforeAll
    static void setUp() {
        Engines.pytorch();
        manager = NDManager.newBaseManager();
        model = ResNet.create(ResNetArch.RESNET18, 1000).initialize(manager);
        stateDict = new LinkedHashMap<>();
        int k = 0;
        for (Map.Entry<String, Parameter> e : model.namedTensors().entrySet()) {
            long[] shape = e.getValue().getShape().getShape();
            float[] data = new float[(int) HostTensor.numel(shape)];
            float base = ++k;
            for (int i = 0; i < data.length; i++) {
                data[i] = base + (i % 101) * 1e-3f;
            }
            stateDict.put(e.getKey(), HostTensor.of(shape, data));
            if (e.getKey().endsWith(".running_var")) {
                String module = e.getKey().substring(0, e.getKey().length() - ".running_var".length());
                stateDict.put(module + ".num_batches_tracked", new HostTensor("I64", new long[0], new float[] {7}));
            }
        }
    }

    @AfterAll
    static void close() {
        manager.close();
    }

    private static Checkpoint checkpoint(Map<String, HostTensor> tensors) {
        return new Checkpoint(SOURCE, CheckpointFormat.PYTORCH_PTH, new LinkedHashMap<>(tensors), Map.of());
    }

    private static LinkedHashMap<String, HostTensor> renamed(UnaryOperator<String> rename) {
        LinkedHashMap<String, HostTensor> out = new LinkedHashMap<>();
        stateDict.forEach((k, v) -> out.put(rename.apply(k), v));
        return out;
    }

    private static WeightLoader.Options options(KeyMapping mapping, boolean strict, boolean newHead) {
        return new WeightLoader.Options(mapping, strict, newHead);
    }

    @Test
    void cleanStateDictMatchesEveryTensor() {
        assertEquals(122, stateDict.size());
        LoadReport r = WeightLoader.plan(model, checkpoint(stateDict), WeightLoader.Options.defaults());
        assertTrue(r.isClean(), r.summary());
        assertEquals(List.copyOf(model.namedTensors().keySet()), r.matched());
        assertEquals(List.of(), r.problems());
        assertEquals(Map.of(), r.renamed());
        assertEquals(Map.of(), r.converted());
        assertEquals(List.of(), r.headReplaced());
        assertEquals("synthetic.pth", r.source());
        assertEquals("PYTORCH_PTH", r.format());
    }

    @Test
    void numBatchesTrackedIsIgnoredAndRestoredOnLoad() {
        LoadReport r = WeightLoader.plan(model, checkpoint(stateDict), WeightLoader.Options.defaults());
        assertEquals(20, r.ignored().size());
        assertTrue(r.ignored().stream().allMatch(k -> k.endsWith(".num_batches_tracked")));
        assertTrue(r.ignored().contains("layer2.0.downsample.1.num_batches_tracked"));
        assertTrue(r.unexpected().isEmpty());

        WeightLoader.load(model, checkpoint(stateDict), WeightLoader.Options.defaults());
        assertTrue(model.batchNorms().stream().allMatch(n -> n.bn().numBatchesTracked() == 7));
    }

    @Test
    void loadCopiesValuesByName() {
        WeightLoader.load(model, checkpoint(stateDict), WeightLoader.Options.defaults());
        Map<String, Parameter> t = model.namedTensors();
        for (String name : List.of("conv1.weight", "layer3.1.bn2.running_var", "layer4.0.downsample.0.weight",
                "fc.bias")) {
            assertArrayEquals(stateDict.get(name).data(), t.get(name).getArray().toFloatArray(), name);
        }
    }

    @Test
    void missingUnexpectedAndMisshapenKeysAreListed() {
        LinkedHashMap<String, HostTensor> sd = new LinkedHashMap<>(stateDict);
        sd.remove("layer1.0.conv1.weight");
        sd.put("extra.weight", HostTensor.of(new long[] {2}, new float[2]));
        sd.put("layer2.0.conv1.weight", HostTensor.of(new long[] {128, 64, 1, 1}, new float[128 * 64]));
        LoadReport r = WeightLoader.plan(model, checkpoint(sd), WeightLoader.Options.defaults());
        assertFalse(r.isClean());
        assertEquals(List.of("layer1.0.conv1.weight"), r.missing());
        assertEquals(List.of("extra.weight"), r.unexpected());
        assertEquals(1, r.shapeMismatches().size());
        LoadReport.ShapeMismatch m = r.shapeMismatches().get(0);
        assertEquals("layer2.0.conv1.weight", m.name());
        assertArrayEquals(new long[] {128, 64, 1, 1}, m.checkpointShape());
        assertArrayEquals(new long[] {128, 64, 3, 3}, m.modelShape());
        assertEquals(100, r.matched().size());
        assertEquals(List.of(
                "missing in checkpoint: layer1.0.conv1.weight",
                "unexpected in checkpoint: extra.weight",
                "shape mismatch: layer2.0.conv1.weight: checkpoint [128, 64, 1, 1], model [128, 64, 3, 3]"),
                r.problems());
    }

    @Test
    void strictLoadFailsWithTheProblemsAndLeavesTheModelAlone() {
        LinkedHashMap<String, HostTensor> sd = new LinkedHashMap<>(stateDict);
        sd.remove("layer1.0.conv1.weight");
        sd.put("extra.weight", HostTensor.of(new long[] {2}, new float[2]));
        sd.put("layer2.0.conv1.weight", HostTensor.of(new long[] {128, 64, 1, 1}, new float[128 * 64]));
        sd.put("conv1.weight", HostTensor.of(stateDict.get("conv1.weight").shape(),
                new float[stateDict.get("conv1.weight").data().length]));
        float[] before = model.namedTensors().get("conv1.weight").getArray().toFloatArray();
        CheckpointException e = assertThrows(CheckpointException.class,
                () -> WeightLoader.load(model, checkpoint(sd), WeightLoader.Options.defaults()));
        assertEquals(ErrorKind.CHECKPOINT, e.kind());
        assertEquals("synthetic.pth: does not fit resnet18: 3 problems" + NL
                + "  missing in checkpoint: layer1.0.conv1.weight" + NL
                + "  unexpected in checkpoint: extra.weight" + NL
                + "  shape mismatch: layer2.0.conv1.weight: checkpoint [128, 64, 1, 1], model [128, 64, 3, 3]" + NL
                + "Fix: map the names with model.key_prefix / model.remap, or set model.strict: false to load only"
                + " what matches (the report lists what is skipped)", e.getMessage());
        assertArrayEquals(before, model.namedTensors().get("conv1.weight").getArray().toFloatArray(),
                "a failed strict load changes nothing");
    }

    @Test
    void nonStrictLoadLoadsWhatMatches() {
        LinkedHashMap<String, HostTensor> sd = new LinkedHashMap<>(stateDict);
        sd.remove("layer1.0.conv1.weight");
        sd.put("extra.weight", HostTensor.of(new long[] {2}, new float[2]));
        LoadReport r = WeightLoader.load(model, checkpoint(sd), options(KeyMapping.defaults(), false, false));
        assertEquals(List.of("layer1.0.conv1.weight"), r.missing());
        assertEquals(List.of("extra.weight"), r.unexpected());
        assertArrayEquals(stateDict.get("fc.weight").data(),
                model.namedTensors().get("fc.weight").getArray().toFloatArray());
    }

    @Test
    void prefixedKeysFailWithAKeyPrefixHint() {
        Checkpoint ckpt = checkpoint(renamed(k -> "backbone." + k));
        LoadReport r = WeightLoader.plan(model, ckpt, WeightLoader.Options.defaults());
        assertEquals(List.of(), r.matched());
        assertEquals(102, r.missing().size());
        assertEquals(102, r.unexpected().size());
        assertEquals(20, r.ignored().size(), "prefixed counters are still counters");

        CheckpointException e = assertThrows(CheckpointException.class,
                () -> WeightLoader.load(model, ckpt, WeightLoader.Options.defaults()));
        String m = e.getMessage();
        assertTrue(m.startsWith("synthetic.pth: does not fit resnet18: 204 problems" + NL
                + "  missing in checkpoint: conv1.weight" + NL), m);
        assertTrue(m.contains(NL + "  … and 192 more" + NL), m);
        assertTrue(m.endsWith(NL + "Fix: the checkpoint's keys start with 'backbone.': set model.key_prefix:"
                + " \"backbone.\""), m);
    }

    @Test
    void keyPrefixMapsThemBack() {
        Checkpoint ckpt = checkpoint(renamed(k -> "backbone." + k));
        LoadReport r = WeightLoader.plan(model, ckpt, options(KeyMapping.of("backbone.", List.of()), true, false));
        assertTrue(r.isClean(), r.summary());
        assertEquals(122, r.renamed().size());
        assertEquals("layer4.1.bn2.weight", r.renamed().get("backbone.layer4.1.bn2.weight"));
    }

    @Test
    void dataParallelAndCompileWrappersAreStrippedByDefault() {
        LoadReport r = WeightLoader.plan(model, checkpoint(renamed(k -> "_orig_mod.module." + k)),
                WeightLoader.Options.defaults());
        assertTrue(r.isClean(), r.summary());
        assertEquals("conv1.weight", r.renamed().get("_orig_mod.module.conv1.weight"));
    }

    @Test
    void remapRenamesAHead() {
        Checkpoint ckpt = checkpoint(renamed(k -> k.startsWith("fc.") ? "head." + k.substring(3) : k));
        assertEquals(List.of("head.weight", "head.bias"),
                WeightLoader.plan(model, ckpt, WeightLoader.Options.defaults()).unexpected());
        KeyMapping m = KeyMapping.of(null, List.of(new KeyMapping.Remap("^head\\.", "fc.")));
        LoadReport r = WeightLoader.plan(model, ckpt, options(m, true, false));
        assertTrue(r.isClean(), r.summary());
        assertEquals(Map.of("head.weight", "fc.weight", "head.bias", "fc.bias"), r.renamed());
    }

    @Test
    void newHeadIsNotLoadedAndNotAProblem() {
        try (NDManager m = NDManager.newBaseManager()) {
            ResNet ten = ResNet.create(ResNetArch.RESNET18, 10).initialize(m);
            float[] fcBefore = ten.namedTensors().get("fc.weight").getArray().toFloatArray();
            LoadReport r = WeightLoader.load(ten, checkpoint(stateDict), options(KeyMapping.defaults(), true, true));
            assertTrue(r.isClean(), r.summary());
            assertEquals(100, r.matched().size());
            assertFalse(r.matched().contains("fc.weight"));
            assertEquals(2, r.headReplaced().size());
            assertEquals("fc.weight: checkpoint [1000, 512], model [10, 512]", r.headReplaced().get(0).toString());
            assertEquals("fc.bias: checkpoint [1000], model [10]", r.headReplaced().get(1).toString());
            assertArrayEquals(fcBefore, ten.namedTensors().get("fc.weight").getArray().toFloatArray());
            assertArrayEquals(stateDict.get("layer4.1.conv2.weight").data(),
                    ten.namedTensors().get("layer4.1.conv2.weight").getArray().toFloatArray());
        }
    }

    @Test
    void newHeadWithoutHeadInTheCheckpointIsNotMissing() {
        try (NDManager m = NDManager.newBaseManager()) {
            ResNet ten = ResNet.create(ResNetArch.RESNET18, 10).initialize(m);
            LinkedHashMap<String, HostTensor> headless = new LinkedHashMap<>(stateDict);
            headless.remove("fc.weight");
            headless.remove("fc.bias");
            LoadReport r = WeightLoader.plan(ten, checkpoint(headless), options(KeyMapping.defaults(), true, true));
            assertTrue(r.isClean(), r.summary());
            assertEquals(List.of(), r.headReplaced());
        }
    }

    @Test
    void otherClassCountWithoutNewHeadFailsWithAHeadHint() {
        try (NDManager m = NDManager.newBaseManager()) {
            ResNet ten = ResNet.create(ResNetArch.RESNET18, 10).initialize(m);
            CheckpointException e = assertThrows(CheckpointException.class,
                    () -> WeightLoader.load(ten, checkpoint(stateDict), WeightLoader.Options.defaults()));
            assertTrue(e.getMessage().startsWith("synthetic.pth: does not fit resnet18: 2 problems" + NL
                    + "  shape mismatch: fc.weight: checkpoint [1000, 512], model [10, 512]" + NL), e.getMessage());
            assertTrue(e.getMessage().endsWith("Fix: the checkpoint's head has 1000 classes; set model.head.classes"
                    + " to replace it with a new head"), e.getMessage());
        }
    }

    @Test
    void halfPrecisionSourcesAreCountedAsConverted() {
        LinkedHashMap<String, HostTensor> sd = new LinkedHashMap<>(stateDict);
        for (String k : List.of("conv1.weight", "layer1.0.conv1.weight", "fc.weight")) {
            HostTensor t = sd.get(k);
            sd.put(k, new HostTensor("F16", t.shape(), t.data()));
        }
        HostTensor bias = sd.get("fc.bias");
        sd.put("fc.bias", new HostTensor("BF16", bias.shape(), bias.data()));
        LoadReport r = WeightLoader.plan(model, checkpoint(sd), WeightLoader.Options.defaults());
        assertTrue(r.isClean());
        assertEquals(Map.of("BF16", 1, "F16", 3), r.converted());
        assertEquals(List.of("BF16", "F16"), List.copyOf(r.converted().keySet()), "sorted for stable reports");
        assertTrue(r.summary().contains("converted to fp32: {BF16=1, F16=3}"), r.summary());
    }

    @Test
    void misshapenHalfTensorIsNotCountedAsConverted() {
        LinkedHashMap<String, HostTensor> sd = new LinkedHashMap<>(stateDict);
        sd.put("fc.bias", new HostTensor("F16", new long[] {3}, new float[3]));
        LoadReport r = WeightLoader.plan(model, checkpoint(sd), WeightLoader.Options.defaults());
        assertEquals(Map.of(), r.converted());
    }

    @Test
    void twoKeysMappingToOneNameIsAnError() {
        LinkedHashMap<String, HostTensor> sd = new LinkedHashMap<>(stateDict);
        sd.put("module.fc.weight", stateDict.get("fc.weight"));
        CheckpointException e = assertThrows(CheckpointException.class,
                () -> WeightLoader.plan(model, checkpoint(sd), WeightLoader.Options.defaults()));
        assertEquals(ErrorKind.CHECKPOINT, e.kind());
        assertEquals("synthetic.pth: keys 'fc.weight' and 'module.fc.weight' both map to 'fc.weight'; adjust"
                + " model.key_prefix / model.remap so each key maps to one name", e.getMessage());
    }

    @Test
    void remapCollisionIsAnErrorToo() {
        KeyMapping m = KeyMapping.of(null, List.of(new KeyMapping.Remap("^fc\\.bias$", "fc.weight")));
        CheckpointException e = assertThrows(CheckpointException.class,
                () -> WeightLoader.load(model, checkpoint(stateDict), options(m, false, false)));
        assertTrue(e.getMessage().startsWith("synthetic.pth: keys 'fc.weight' and 'fc.bias' both map to 'fc.weight'"),
                e.getMessage());
    }

    @Test
    void optimizerStateInOurOwnCheckpointIsIgnored() {
        LinkedHashMap<String, HostTensor> sd = new LinkedHashMap<>(stateDict);
        sd.put("optimizer.fc.weight.momentum_buffer", stateDict.get("fc.weight"));
        Checkpoint ours = new Checkpoint(SOURCE, CheckpointFormat.FINETUNE, sd, Map.of());
        LoadReport r = WeightLoader.plan(model, ours, WeightLoader.Options.defaults());
        assertTrue(r.isClean(), r.summary());
        assertTrue(r.ignored().contains("optimizer.fc.weight.momentum_buffer"));
        // In a foreign file the same key is just unexpected.
        LoadReport foreign = WeightLoader.plan(model, checkpoint(sd), WeightLoader.Options.defaults());
        assertEquals(List.of("optimizer.fc.weight.momentum_buffer"), foreign.unexpected());
    }

    @Test
    void stateDictsExportRoundTrips() {
        WeightLoader.load(model, checkpoint(stateDict), WeightLoader.Options.defaults());
        LinkedHashMap<String, HostTensor> exported = StateDicts.export(model);
        assertEquals(List.copyOf(stateDict.keySet()), List.copyOf(exported.keySet()), "torchvision's key order");
        for (String k : List.of("bn1.num_batches_tracked", "layer4.1.bn2.running_mean", "fc.weight")) {
            assertArrayEquals(stateDict.get(k).shape(), exported.get(k).shape(), k);
            assertTrue(Arrays.equals(stateDict.get(k).data(), exported.get(k).data()), k);
        }
        assertEquals("I64", exported.get("bn1.num_batches_tracked").sourceDtype());
    }
}
