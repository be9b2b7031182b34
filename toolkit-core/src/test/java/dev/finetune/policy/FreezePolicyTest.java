package dev.finetune.policy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDManager;
import dev.finetune.ErrorKind;
import dev.finetune.FinetuneException;
import dev.finetune.config.FreezeConfig;
import dev.finetune.engine.Engines;
import dev.finetune.model.BnMode;
import dev.finetune.model.ResNet;
import dev.finetune.model.ResNetArch;
import java.util.List;
import java.util.Map;
import java.util.function.Predicate;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * {@link FreezePolicy} on the real ResNet-18 tensor list (fc with 100 classes). Expected counts are torchvision's:
 * {@code sum(p.numel() for n, p in torchvision.models.resnet18(num_classes=100).named_parameters() if ...)}.
 */
class FreezePolicyTest {
    private static final long TOTAL = 11_227_812;
    private static final long FC = 51_300;
    private static final long STEM = 9_536;
    private static final long LAYER1 = 147_968;
    private static final long LAYER2 = 525_568;
    private static final long LAYER3 = 2_099_712;
    private static final long LAYER4 = 8_393_728;
    private static final long LAYER4_BN_AFFINE = 5_120;
    private static final long BN_AFFINE = 9_600;
    private static final List<String> BATCH_NORMS = List.of("bn1", "layer1.0.bn1", "layer1.0.bn2", "layer1.1.bn1",
            "layer1.1.bn2", "layer2.0.bn1", "layer2.0.bn2", "layer2.0.downsample.1", "layer2.1.bn1", "layer2.1.bn2",
            "layer3.0.bn1", "layer3.0.bn2", "layer3.0.downsample.1", "layer3.1.bn1", "layer3.1.bn2", "layer4.0.bn1",
            "layer4.0.bn2", "layer4.0.downsample.1", "layer4.1.bn1", "layer4.1.bn2");

    private static NDManager manager;
    private static ResNet model;
    private static List<TensorInfo> tensors;

    @BeforeAll
    static void buildModel() {
        Engines.pytorch();
        manager = NDManager.newBaseManager();
        model = ResNet.create(ResNetArch.RESNET18, 100).initialize(manager);
        tensors = FreezePlan.describe(model);
    }

    @AfterAll
    static void close() {
        manager.close();
    }

    @Test
    void describeListsParametersBuffersAndBatchNormOwners() {
        assertEquals(102, tensors.size());
        TensorInfo mean = byName("layer2.0.downsample.1.running_mean");
        assertTrue(mean.buffer());
        assertEquals("layer2.0.downsample.1", mean.bnModule());
        TensorInfo gamma = byName("layer4.1.bn2.weight");
        assertFalse(gamma.buffer());
        assertEquals("layer4.1.bn2", gamma.bnModule());
        assertEquals(null, byName("layer2.0.downsample.0.weight").bnModule(), "the downsample conv is no BN");
        assertEquals(null, byName("fc.weight").bnModule());
        assertEquals(List.of(100L, 512L), java.util.Arrays.stream(byName("fc.weight").shape()).boxed().toList());
    }

    @Test
    void seedRecipeTrainsOnlyTheHead() {
        FreezePolicy seed = new FreezePolicy(false, -1, List.of(FreezePolicy.Rule.train("freeze.rules[0]", "fc.*")),
                BnPolicy.AUTO);
        FreezePlan plan = seed.plan(tensors);
        assertEquals(51_300, plan.trainableParameterCount());
        assertEquals(11_176_512, plan.frozenParameterCount());
        assertEquals(List.of("fc.weight", "fc.bias"), plan.trainableNames());
        assertEquals("freeze.rules[0] (train: fc.*)", decision(plan, "fc.weight").decidedBy());
        assertEquals("default: freeze", decision(plan, "layer3.0.conv1.weight").decidedBy());
        assertEquals("buffer (never trained; see BN mode)", decision(plan, "bn1.running_var").decidedBy());
        assertFalse(plan.isTrainable("bn1.running_var"));
        assertTrue(plan.isTrainable("fc.bias"));
        // Frozen BN keeps its statistics under batchnorm: auto.
        assertEquals(BATCH_NORMS, List.copyOf(plan.bnModes().keySet()));
        assertTrue(plan.bnModes().values().stream().allMatch(m -> m == BnMode.FROZEN_STATS));
        assertEquals("batchnorm: auto (affine frozen)", plan.bnReasons().get("layer1.0.bn1"));
        assertEquals("default: freeze, {train: fc.*}, batchnorm: auto", seed.describe());
    }

    @Test
    void linearProbeAndTrainAllPresets() {
        FreezePlan probe = FreezePolicy.linearProbe().plan(tensors);
        assertEquals(FC, probe.trainableParameterCount());
        FreezePlan all = FreezePolicy.trainAll().plan(tensors);
        assertEquals(TOTAL, all.trainableParameterCount());
        assertEquals(0, all.frozenParameterCount());
        assertTrue(all.bnModes().values().stream().allMatch(m -> m == BnMode.TRAIN));
    }

    @Test
    void policyFromConfigMatchesTheSeedRecipe() {
        FreezeConfig c = new FreezeConfig("freeze", null, List.of(new FreezeConfig.RuleConfig(List.of("fc.*"), null)),
                null, null);
        FreezePlan plan = c.toPolicy().plan(tensors);
        assertEquals(51_300, plan.trainableParameterCount());
        assertEquals(11_176_512, plan.frozenParameterCount());
    }

    @Test
    void lastMatchingRuleWins() {
        FreezePolicy trainThenFreeze = new FreezePolicy(false, -1, List.of(
                FreezePolicy.Rule.train("freeze.rules[0]", "layer4"),
                FreezePolicy.Rule.freeze("freeze.rules[1]", "layer4.1")), BnPolicy.AUTO);
        FreezePlan a = trainThenFreeze.plan(tensors);
        assertTrue(a.isTrainable("layer4.0.conv1.weight"));
        assertTrue(a.isTrainable("layer4.0.downsample.0.weight"));
        assertFalse(a.isTrainable("layer4.1.conv1.weight"));
        assertEquals("freeze.rules[0] (train: layer4)", decision(a, "layer4.0.conv2.weight").decidedBy());
        assertEquals("freeze.rules[1] (freeze: layer4.1)", decision(a, "layer4.1.conv2.weight").decidedBy());
        assertEquals(sum(a, n -> n.startsWith("layer4.0.")), a.trainableParameterCount());

        FreezePolicy freezeThenTrain = new FreezePolicy(false, -1, List.of(
                FreezePolicy.Rule.freeze("freeze.rules[0]", "layer4.1"),
                FreezePolicy.Rule.train("freeze.rules[1]", "layer4")), BnPolicy.AUTO);
        FreezePlan b = freezeThenTrain.plan(tensors);
        assertTrue(b.isTrainable("layer4.1.conv1.weight"), "the later train rule overrides the earlier freeze");
        assertEquals(LAYER4, b.trainableParameterCount());
    }

    @Test
    void ruleWithSeveralPatterns() {
        FreezePolicy p = new FreezePolicy(false, -1, List.of(FreezePolicy.Rule.train("freeze.rules[0]", "layer4",
                "fc.*")), BnPolicy.AUTO);
        FreezePlan plan = p.plan(tensors);
        assertEquals(LAYER4 + FC, plan.trainableParameterCount());
        assertEquals("freeze.rules[0] (train: [layer4, fc.*])", decision(plan, "fc.bias").decidedBy());
    }

    @Test
    void frozenStagesZeroFreezesTheStem() {
        FreezePlan plan = new FreezePolicy(true, 0, List.of(), BnPolicy.AUTO).plan(tensors);
        assertFalse(plan.isTrainable("conv1.weight"));
        assertFalse(plan.isTrainable("bn1.weight"));
        assertTrue(plan.isTrainable("layer1.0.conv1.weight"));
        assertEquals(STEM, plan.frozenParameterCount());
        assertEquals(TOTAL - STEM, plan.trainableParameterCount());
        assertEquals("frozen_stages: 0", decision(plan, "conv1.weight").decidedBy());
        assertEquals(BnMode.FROZEN_STATS, plan.bnModes().get("bn1"));
        assertEquals(BnMode.TRAIN, plan.bnModes().get("layer1.0.bn1"));
    }

    @Test
    void frozenStagesTwo() {
        FreezePlan plan = new FreezePolicy(true, 2, List.of(), BnPolicy.AUTO).plan(tensors);
        assertFalse(plan.isTrainable("layer2.1.conv2.weight"));
        assertTrue(plan.isTrainable("layer3.0.conv1.weight"));
        assertEquals(STEM + LAYER1 + LAYER2, plan.frozenParameterCount());
        assertEquals(TOTAL - STEM - LAYER1 - LAYER2, plan.trainableParameterCount());
    }

    @Test
    void frozenStagesFourLeavesTheHead() {
        FreezePlan plan = new FreezePolicy(true, 4, List.of(), BnPolicy.AUTO).plan(tensors);
        assertEquals(FC, plan.trainableParameterCount());
        assertEquals(STEM + LAYER1 + LAYER2 + LAYER3 + LAYER4, plan.frozenParameterCount());
    }

    @Test
    void rulesComeAfterFrozenStages() {
        FreezePlan plan = new FreezePolicy(true, 2, List.of(FreezePolicy.Rule.train("freeze.rules[0]", "layer1")),
                BnPolicy.AUTO).plan(tensors);
        assertTrue(plan.isTrainable("layer1.0.conv1.weight"), "a rule overrides frozen_stages");
        assertFalse(plan.isTrainable("layer2.0.conv1.weight"));
        assertEquals(STEM + LAYER2, plan.frozenParameterCount());
    }

    @Test
    void frozenStagesOutOfRange() {
        // The upper bound is the model's: ResNet has stem, layer1..layer4, then the head.
        FinetuneException e = assertThrows(FinetuneException.class,
                () -> new FreezePolicy(true, 5, List.of(), BnPolicy.AUTO).plan(tensors));
        assertEquals(ErrorKind.CONFIG, e.kind());
        assertEquals("frozen_stages: must be -1 (none) to 4 for this model (its stages are [stem, layer1,"
                + " layer2, layer3, layer4, head]; the head always trains), found 5", e.getMessage());
        FinetuneException low = assertThrows(FinetuneException.class,
                () -> new FreezeConfig("train", -2, null, null, null).toPolicy());
        assertEquals("freeze.frozen_stages: must be -1 (none) or more, found -2", low.getMessage());
    }

    /** Default freeze, layer4 and the head train: the batchnorm modes differ only in BN treatment. */
    private static FreezePolicy layer4(BnPolicy bn) {
        return new FreezePolicy(false, -1, List.of(FreezePolicy.Rule.train("freeze.rules[0]", "layer4", "fc")), bn);
    }

    @Test
    void batchnormAutoFollowsTheAffineParameters() {
        FreezePlan plan = layer4(BnPolicy.AUTO).plan(tensors);
        for (String bn : BATCH_NORMS) {
            BnMode expected = bn.startsWith("layer4.") ? BnMode.TRAIN : BnMode.FROZEN_STATS;
            assertEquals(expected, plan.bnModes().get(bn), bn);
        }
        assertEquals("batchnorm: auto (affine trains)", plan.bnReasons().get("layer4.0.downsample.1"));
        assertEquals("batchnorm: auto (affine frozen)", plan.bnReasons().get("layer3.1.bn2"));
        assertTrue(plan.isTrainable("layer4.0.bn1.weight"));
        assertEquals(LAYER4 + FC, plan.trainableParameterCount());
    }

    @Test
    void batchnormAutoWithOnlyGammaTraining() {
        FreezePlan plan = new FreezePolicy(false, -1, List.of(
                FreezePolicy.Rule.train("freeze.rules[0]", "fc.*", "layer3.1.bn2.weight")), BnPolicy.AUTO)
                .plan(tensors);
        assertEquals(BnMode.TRAIN, plan.bnModes().get("layer3.1.bn2"), "one trainable affine tensor is enough");
        assertEquals(BnMode.FROZEN_STATS, plan.bnModes().get("layer3.1.bn1"));
    }

    @Test
    void batchnormTrainUpdatesEveryLayer() {
        FreezePlan plan = layer4(BnPolicy.TRAIN).plan(tensors);
        assertTrue(plan.bnModes().values().stream().allMatch(m -> m == BnMode.TRAIN));
        assertEquals("batchnorm: train", plan.bnReasons().get("bn1"));
        assertFalse(plan.isTrainable("bn1.weight"), "the mode does not change which parameters train");
        assertEquals(LAYER4 + FC, plan.trainableParameterCount());
    }

    @Test
    void batchnormFreezeStatsKeepsEveryLayersStatisticsButNotItsAffine() {
        FreezePlan plan = layer4(BnPolicy.FREEZE_STATS).plan(tensors);
        assertTrue(plan.bnModes().values().stream().allMatch(m -> m == BnMode.FROZEN_STATS));
        assertEquals("batchnorm: freeze-stats", plan.bnReasons().get("layer4.1.bn2"));
        assertTrue(plan.isTrainable("layer4.1.bn2.weight"), "affine parameters follow the rules");
        assertEquals(LAYER4 + FC, plan.trainableParameterCount());
    }

    @Test
    void batchnormFreezeAllOverridesTrainRulesForBnAffine() {
        FreezePlan plan = layer4(BnPolicy.FREEZE_ALL).plan(tensors);
        assertTrue(plan.bnModes().values().stream().allMatch(m -> m == BnMode.FROZEN_STATS));
        assertEquals("batchnorm: freeze-all", plan.bnReasons().get("layer4.1.bn2"));
        assertFalse(plan.isTrainable("layer4.1.bn2.weight"));
        assertFalse(plan.isTrainable("layer4.0.downsample.1.bias"));
        assertEquals("batchnorm: freeze-all", decision(plan, "layer4.1.bn2.weight").decidedBy());
        assertTrue(plan.isTrainable("layer4.1.conv2.weight"));
        assertTrue(plan.isTrainable("layer4.0.downsample.0.weight"), "the downsample conv is not a BN");
        assertEquals(LAYER4 - LAYER4_BN_AFFINE + FC, plan.trainableParameterCount());

        FreezePlan everything = new FreezePolicy(true, -1, List.of(FreezePolicy.Rule.train("freeze.rules[0]",
                "*.bn?.*")), BnPolicy.FREEZE_ALL).plan(tensors);
        assertEquals(TOTAL - BN_AFFINE, everything.trainableParameterCount());
    }

    @Test
    void applySetsRequiresGradAndBnModesOnTheModel() {
        FreezePlan plan = FreezePlan.applyTo(model, layer4(BnPolicy.AUTO));
        Map<String, ai.djl.nn.Parameter> t = model.namedTensors();
        try {
            assertFalse(t.get("conv1.weight").requiresGradient());
            assertFalse(t.get("layer3.1.bn2.bias").requiresGradient());
            assertTrue(t.get("layer4.0.conv1.weight").requiresGradient());
            assertTrue(t.get("fc.weight").requiresGradient());
            for (ResNet.NamedBatchNorm n : model.batchNorms()) {
                assertEquals(plan.bnModes().get(n.name()), n.bn().mode(), n.name());
            }
        } finally {
            FreezePlan.applyTo(model, FreezePolicy.trainAll());
        }
        assertTrue(t.get("conv1.weight").requiresGradient());
        assertTrue(model.batchNorms().stream().allMatch(n -> n.bn().mode() == BnMode.TRAIN));
    }

    @Test
    void withRuleAppendsARuleThatWins() {
        FreezePolicy p = FreezePolicy.linearProbe().withRule(FreezePolicy.Rule.train("train.unfreeze[0]", "layer4"));
        FreezePlan plan = p.plan(tensors);
        assertEquals(LAYER4 + FC, plan.trainableParameterCount());
        assertEquals("train.unfreeze[0] (train: layer4)", decision(plan, "layer4.1.bn1.bias").decidedBy());
    }

    @Test
    void ruleMatchingNothingNamesTheRuleAndTheNearestNames() {
        FreezeConfig c = new FreezeConfig("freeze", null, List.of(
                new FreezeConfig.RuleConfig(List.of("fc.*"), null),
                new FreezeConfig.RuleConfig(null, List.of("fc.wieght"))), null, null);
        FinetuneException e = assertThrows(FinetuneException.class, () -> c.toPolicy().plan(tensors));
        assertEquals(ErrorKind.CONFIG, e.kind());
        String m = e.getMessage();
        assertTrue(m.startsWith("freeze.rules[1].freeze: pattern 'fc.wieght' matches no parameter of the model;"
                + " nearest names: [fc.weight, "), m);
        assertEquals(List.of("fc.weight", "bn1.weight", "fc.bias", "conv1.weight", "fc"), suggestions(m));
        assertTrue(m.endsWith("]. Names are torchvision's (conv1.weight, layer4.1.bn2.bias, fc.weight); run"
                + " 'finetune inspect' to list them"), m);
    }

    @Test
    void patternInAListIsNamedByIndex() {
        FreezeConfig c = new FreezeConfig("freeze", null, List.of(
                new FreezeConfig.RuleConfig(List.of("fc.*", "layr4.*"), null)), null, null);
        FinetuneException e = assertThrows(FinetuneException.class, () -> c.toPolicy().plan(tensors));
        assertTrue(e.getMessage().startsWith("freeze.rules[0].train[1]: pattern 'layr4.*' matches no parameter of"
                + " the model; nearest names: [layer4, "), e.getMessage());
    }

    @Test
    void regexRuleMatchingNothing() {
        FinetuneException e = assertThrows(FinetuneException.class, () -> new FreezePolicy(true, -1, List.of(
                FreezePolicy.Rule.freeze("freeze.rules[0]", "re:^backbone\\.")), BnPolicy.AUTO).plan(tensors));
        assertTrue(e.getMessage().startsWith("freeze.rules[0]: pattern 're:^backbone\\.' matches no parameter of the"
                + " model; nearest names: ["), e.getMessage());
        assertEquals(5, suggestions(e.getMessage()).size());
    }

    /** A stage number one past the last: the user means layer4. */
    @Test
    void typoInAStageNameSuggestsTheStage() {
        FinetuneException e = assertThrows(FinetuneException.class, () -> new FreezePolicy(false, -1, List.of(
                FreezePolicy.Rule.train("freeze.rules[0]", "layer5.*")), BnPolicy.AUTO).plan(tensors));
        assertTrue(suggestions(e.getMessage()).contains("layer4"), e.getMessage());
    }

    @Test
    void typoInAStageNameWithoutWildcardSuggestsTheStage() {
        FinetuneException e = assertThrows(FinetuneException.class, () -> new FreezePolicy(false, -1, List.of(
                FreezePolicy.Rule.train("freeze.rules[0]", "layer5")), BnPolicy.AUTO).plan(tensors));
        assertEquals(List.of("layer1", "layer2", "layer3", "layer4", "layer1.0"), suggestions(e.getMessage()));
    }

    /** {@code stage:NAME} selects a stage whatever its modules are called: one policy for every family. */
    @Test
    void stagePatternsSelectByStage() {
        FreezePlan probe = FreezePolicy.linearProbe().plan(tensors);
        assertEquals(List.of("fc.weight", "fc.bias"), probe.trainableNames());
        assertEquals("freeze.rules[0] (train: stage:head)", decision(probe, "fc.bias").decidedBy());
        FreezePlan last = new FreezePolicy(false, -1, List.of(FreezePolicy.Rule.train("freeze.rules[0]",
                "stage:layer4", "stage:head")), BnPolicy.AUTO).plan(tensors);
        assertEquals(LAYER4 + FC, last.trainableParameterCount());
        assertTrue(last.isTrainable("layer4.1.bn2.weight"));
        assertFalse(last.isTrainable("layer3.1.bn2.weight"));
        FinetuneException e = assertThrows(FinetuneException.class, () -> new FreezePolicy(false, -1,
                List.of(FreezePolicy.Rule.train("freeze.rules[0]", "stage:classifier")), BnPolicy.AUTO).plan(tensors));
        assertEquals("freeze.rules[0]: pattern 'stage:classifier' names no stage of this model; its stages are [stem,"
                + " layer1, layer2, layer3, layer4, head]", e.getMessage());
    }

    @Test
    void policyThatTrainsNothing() {
        FinetuneException e = assertThrows(FinetuneException.class,
                () -> new FreezePolicy(false, -1, List.of(), BnPolicy.AUTO).plan(tensors));
        assertEquals(ErrorKind.CONFIG, e.kind());
        assertEquals("this policy leaves nothing to train (all 11227812 parameters frozen); add a rule such as"
                + " {train: \"stage:head\"} or set default: train", e.getMessage());

        FinetuneException late = assertThrows(FinetuneException.class, () -> new FreezePolicy(true, 4, List.of(
                FreezePolicy.Rule.freeze("freeze.rules[0]", "fc")), BnPolicy.AUTO).plan(tensors));
        assertTrue(late.getMessage().startsWith("this policy leaves nothing to train"), late.getMessage());
    }

    @Test
    void policyThatTrainsOnlyBnUnderFreezeAllTrainsNothing() {
        FinetuneException e = assertThrows(FinetuneException.class, () -> new FreezePolicy(false, -1, List.of(
                FreezePolicy.Rule.train("freeze.rules[0]", "*.bn?.*")), BnPolicy.FREEZE_ALL).plan(tensors));
        assertTrue(e.getMessage().startsWith("this policy leaves nothing to train"), e.getMessage());
    }

    // ---------------------------------------------------------------- helpers

    /** The suggestion list of a "matches no parameter" message. */
    private static List<String> suggestions(String message) {
        int from = message.indexOf("nearest names: [");
        assertTrue(from >= 0, message);
        from += "nearest names: [".length();
        return List.of(message.substring(from, message.indexOf(']', from)).split(", "));
    }

    private static TensorInfo byName(String name) {
        return tensors.stream().filter(t -> t.name().equals(name)).findFirst().orElseThrow();
    }

    private static FreezePlan.Decision decision(FreezePlan plan, String name) {
        return plan.decisions().stream().filter(d -> d.name().equals(name)).findFirst().orElseThrow();
    }

    private static long sum(FreezePlan plan, Predicate<String> names) {
        return plan.decisions().stream()
                .filter(d -> !d.tensor().buffer() && names.test(d.name()))
                .mapToLong(d -> d.tensor().count())
                .sum();
    }
}
