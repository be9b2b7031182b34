package dev.finetune.optim;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDManager;
import ai.djl.nn.Parameter;
import dev.finetune.ErrorKind;
import dev.finetune.FinetuneException;
import dev.finetune.engine.Engines;
import dev.finetune.model.ResNet;
import dev.finetune.model.ResNetArch;
import dev.finetune.policy.BnPolicy;
import dev.finetune.policy.FreezePlan;
import dev.finetune.policy.FreezePolicy;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * {@link GroupedOptimizer#slotsFor} on the real ResNet-18 with layer4 and the head trainable: which parameters the
 * optimizer holds, and each one's learning-rate multiplier and weight decay. (Update math: GroupedOptimizerParityTest.)
 */
class GroupedOptimizerTest {
    private static NDManager manager;
    private static Map<String, Parameter> tensors;
    private static FreezePlan plan;

    @BeforeAll
    static void buildModel() {
        Engines.pytorch();
        manager = NDManager.newBaseManager();
        ResNet model = ResNet.create(ResNetArch.RESNET18, 100).initialize(manager);
        tensors = model.namedTensors();
        plan = new FreezePolicy(false, -1, List.of(FreezePolicy.Rule.train("freeze.rules[0]", "layer4", "fc")),
                BnPolicy.AUTO).plan(FreezePlan.describe(model));
    }

    @AfterAll
    static void close() {
        manager.close();
    }

    private static OptimizerSettings sgd(double wd, boolean decayNormAndBias, OptimizerSettings.GroupSettings... g) {
        return new OptimizerSettings("sgd", 0.1, 0.9, false, 0, wd, 0.9, 0.999, 1e-8, decayNormAndBias, List.of(g));
    }

    private static OptimizerSettings.GroupSettings group(String match, Double lrMult, Double wd) {
        return new OptimizerSettings.GroupSettings(match, lrMult, wd);
    }

    private static ParamSlot slot(List<ParamSlot> slots, String name) {
        return slots.stream().filter(s -> s.name().equals(name)).findFirst()
                .orElseThrow(() -> new AssertionError(name + " is not in the optimizer"));
    }

    @Test
    void holdsExactlyTheTrainableParametersInStateDictOrder() {
        List<ParamSlot> slots = GroupedOptimizer.slotsFor(sgd(1e-4, false), tensors, plan);
        assertEquals(plan.trainableNames(), slots.stream().map(ParamSlot::name).toList());
        assertEquals(17, slots.size(), "layer4: 2 x (2 conv + 2 BN x 2) + downsample conv + BN x 2 = 15; fc: 2");
        assertTrue(slots.stream().noneMatch(s -> s.name().contains("running_")), "no buffers");
        assertTrue(slots.stream().allMatch(s -> s.name().startsWith("layer4.") || s.name().startsWith("fc.")));
        assertTrue(slots.stream().allMatch(s -> s.parameter() == tensors.get(s.name())));
    }

    @Test
    void baseGroupDecaysOnlyMatrices() {
        List<ParamSlot> slots = GroupedOptimizer.slotsFor(sgd(1e-4, false), tensors, plan);
        assertEquals(new ParamSlot("fc.weight", tensors.get("fc.weight"), 1.0, 1e-4, "base"),
                slot(slots, "fc.weight"));
        ParamSlot bias = slot(slots, "fc.bias");
        assertEquals(0.0, bias.weightDecay());
        assertEquals("base (no decay: bias/norm)", bias.group());
        assertEquals(0.0, slot(slots, "layer4.0.bn1.weight").weightDecay(), "BN gamma is 1-d: no decay");
        assertEquals(1e-4, slot(slots, "layer4.0.conv1.weight").weightDecay());
    }

    @Test
    void decayNormAndBiasDecaysEverything() {
        List<ParamSlot> slots = GroupedOptimizer.slotsFor(sgd(1e-4, true), tensors, plan);
        assertTrue(slots.stream().allMatch(s -> s.weightDecay() == 1e-4));
        assertTrue(slots.stream().allMatch(s -> s.group().equals("base")));
    }

    @Test
    void withoutWeightDecayTheBiasGroupIsPlainBase() {
        List<ParamSlot> slots = GroupedOptimizer.slotsFor(sgd(0, false), tensors, plan);
        assertEquals("base", slot(slots, "fc.bias").group());
    }

    @Test
    void groupsSetLrMultAndWeightDecayLastMatchWins() {
        List<ParamSlot> slots = GroupedOptimizer.slotsFor(sgd(1e-4, false,
                group("layer4.*", 0.1, null),
                group("layer4.1", 0.5, 0.0)), tensors, plan);
        ParamSlot l40 = slot(slots, "layer4.0.conv1.weight");
        assertEquals(0.1, l40.lrMult());
        assertEquals(1e-4, l40.weightDecay(), "a group without weight_decay keeps the optimizer's");
        assertEquals("optimizer.groups[0]", l40.group());
        ParamSlot l41 = slot(slots, "layer4.1.conv1.weight");
        assertEquals(0.5, l41.lrMult());
        assertEquals(0.0, l41.weightDecay());
        assertEquals("optimizer.groups[1]", l41.group());
        ParamSlot bn = slot(slots, "layer4.0.bn1.weight");
        assertEquals(0.1, bn.lrMult());
        assertEquals(0.0, bn.weightDecay(), "still no decay on 1-d tensors in a group without weight_decay");
        ParamSlot fc = slot(slots, "fc.weight");
        assertEquals(1.0, fc.lrMult());
        assertEquals("base", fc.group());
    }

    @Test
    void groupWeightDecayAppliesToItsOneDimensionalTensorsToo() {
        List<ParamSlot> slots = GroupedOptimizer.slotsFor(sgd(1e-4, false, group("fc.*", 2.0, 0.05)), tensors, plan);
        assertEquals(0.05, slot(slots, "fc.bias").weightDecay(), "an explicit group weight_decay is what it says");
        assertEquals(2.0, slot(slots, "fc.bias").lrMult());
    }

    @Test
    void groupMatchingOnlyFrozenParametersIsAllowed() {
        // layer1 is frozen now but may be unfrozen later (train.unfreeze): the group is kept, nothing uses it yet.
        List<ParamSlot> slots = GroupedOptimizer.slotsFor(sgd(0, false, group("layer1", 0.01, null)), tensors, plan);
        assertTrue(slots.stream().noneMatch(s -> s.group().equals("optimizer.groups[0]")));
    }

    /**
     * The slot names its group ("groups[1]"), so everything about it should come from that group or the
     * optimizer — not from an earlier group that also matched.
     */
    @Test
    void lastMatchingGroupDecidesWeightDecayToo() {
        List<ParamSlot> slots = GroupedOptimizer.slotsFor(sgd(1e-4, false,
                group("layer4.*", null, 0.0),
                group("layer4.1", 0.5, null)), tensors, plan);
        ParamSlot l41 = slot(slots, "layer4.1.conv1.weight");
        assertEquals("optimizer.groups[1]", l41.group());
        assertEquals(0.5, l41.lrMult());
        assertEquals(1e-4, l41.weightDecay());
    }

    @Test
    void groupMatchingNothingIsAConfigError() {
        FinetuneException e = assertThrows(FinetuneException.class, () -> GroupedOptimizer.slotsFor(
                sgd(0, false, group("fc.*", 2.0, null), group("layer5.*", 0.1, null)), tensors, plan));
        assertEquals(ErrorKind.CONFIG, e.kind());
        assertEquals("groups[1].match: pattern 'layer5.*' matches no parameter of the model; names are"
                + " torchvision's (layer4.0.conv1.weight, fc.bias); run 'finetune inspect'", e.getMessage());
    }

    @Test
    void invalidGroupPatternIsAConfigError() {
        FinetuneException e = assertThrows(FinetuneException.class, () -> GroupedOptimizer.slotsFor(
                sgd(0, false, group("layer[34].*", 2.0, null)), tensors, plan));
        assertEquals("groups[0].match: invalid glob 'layer[34].*': only * and ? are wildcards; for classes"
                + " or groups write a regex as 're:layer[34].*'", e.getMessage());
    }

    @Test
    void buildAllocatesNoStateUntilTheFirstStep() {
        try (GroupedOptimizer opt = GroupedOptimizer.build(sgd(1e-4, false), tensors, plan, manager)) {
            assertEquals(plan.trainableNames(), opt.parameterNames());
            assertEquals(List.of(), opt.namesWithState());
            assertTrue(opt.exportState().isEmpty());
        }
    }
}
