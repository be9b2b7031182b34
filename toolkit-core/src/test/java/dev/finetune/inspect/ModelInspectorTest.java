package dev.finetune.inspect;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDManager;
import dev.finetune.engine.Engines;
import dev.finetune.model.ResNet;
import dev.finetune.model.ResNetArch;
import dev.finetune.optim.OptimizerSettings;
import dev.finetune.policy.BnPolicy;
import dev.finetune.policy.FreezePlan;
import dev.finetune.policy.FreezePolicy;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * {@link ModelInspector} on ResNet-18 with a 100-class head: totals, per-tensor rows and the backward frontier. The
 * plan is applied to the model first, as {@code FineTuner} does (the frontier reads the BN layers' actual modes).
 */
class ModelInspectorTest {
    private static final List<String> ALL_BACKBONE = List.of("stem", "layer1", "layer2", "layer3", "layer4");

    private static NDManager manager;
    private static ResNet model;

    @BeforeAll
    static void buildModel() {
        Engines.pytorch();
        manager = NDManager.newBaseManager();
        model = ResNet.create(ResNetArch.RESNET18, 100).initialize(manager);
    }

    @AfterAll
    static void close() {
        manager.close();
    }

    private static InspectReport inspect(FreezePolicy policy, OptimizerSettings optimizer, int imageSize) {
        FreezePlan plan = FreezePlan.applyTo(model, policy);
        return ModelInspector.inspect("test", model, plan, optimizer, imageSize, null);
    }

    private static FreezePolicy seed() {
        return new FreezePolicy(false, -1, List.of(FreezePolicy.Rule.train("freeze.rules[0]", "fc.*")), BnPolicy.AUTO);
    }

    private static FreezePolicy layer4(BnPolicy bn) {
        return new FreezePolicy(false, -1, List.of(FreezePolicy.Rule.train("freeze.rules[0]", "layer4", "fc")), bn);
    }

    private static InspectReport.Row row(InspectReport r, String name) {
        return r.rows().stream().filter(x -> x.name().equals(name)).findFirst().orElseThrow();
    }

    @Test
    void seedPolicyTotals() {
        InspectReport r = inspect(seed(), OptimizerSettings.sgd(0.01, 0.9), 224);
        assertEquals("test", r.experiment());
        assertEquals("default: freeze, {train: fc.*}, batchnorm: auto", r.policy());
        assertEquals(51_300, r.trainableParams());
        assertEquals(11_176_512, r.frozenParams());
        assertEquals(9_600, r.bufferElements(), "running_mean + running_var of 20 BN layers (4,800 channels)");
        assertEquals(100.0 * 51_300 / 11_227_812, r.trainablePercent(), 1e-12);
        assertEquals(102, r.rows().size());
        assertNull(r.load());
    }

    @Test
    void seedPolicyFrontierIsTheHead() {
        InspectReport.Frontier f = inspect(seed(), OptimizerSettings.sgd(0.01, 0.9), 224).frontier();
        assertEquals("head", f.firstTrainableStage());
        assertEquals(ALL_BACKBONE, f.noGradStages());
        assertTrue(f.deterministicPrefix(), "every BN before the head keeps its statistics");
        assertEquals(224, f.imageSize());
        assertTrue(f.savedActivationBytesPerImage() > 0);
        assertEquals(f.totalActivationBytesPerImage() - 512 * 4, f.savedActivationBytesPerImage(),
                "everything but the head's 512 pooled features");
    }

    @Test
    void rowsHaveLearningRatesOnlyForTrainableParameters() {
        InspectReport r = inspect(seed(), OptimizerSettings.sgd(0.01, 0.9), 224);
        InspectReport.Row fc = row(r, "fc.weight");
        assertTrue(fc.trainable());
        assertTrue(fc.inOptimizer());
        assertEquals(0.01, fc.lr());
        assertEquals(0.0, fc.weightDecay());
        assertEquals("param", fc.kind());
        assertEquals(List.of(100L, 512L), fc.shape());
        assertEquals(51_200, fc.count());
        assertEquals("freeze.rules[0] (train: fc.*)", fc.decidedBy());

        InspectReport.Row conv = row(r, "layer2.0.conv1.weight");
        assertFalse(conv.trainable());
        assertFalse(conv.inOptimizer());
        assertNull(conv.lr());
        assertNull(conv.weightDecay());
        assertEquals("default: freeze", conv.decidedBy());

        for (InspectReport.Row x : r.rows()) {
            assertEquals(x.trainable(), x.lr() != null, x.name());
            assertEquals(x.trainable(), x.inOptimizer(), x.name());
        }
    }

    @Test
    void bufferRowsShowTheBnMode() {
        InspectReport r = inspect(seed(), OptimizerSettings.sgd(0.01, 0.9), 224);
        InspectReport.Row mean = row(r, "layer3.0.downsample.1.running_mean");
        assertEquals("buffer", mean.kind());
        assertFalse(mean.trainable());
        assertEquals("FROZEN_STATS", mean.bnMode());
        assertEquals("frozen statistics", mean.decidedBy());
        assertNull(row(r, "layer3.0.conv1.weight").bnMode());
        assertEquals(20, r.batchNorms().size());
        assertTrue(r.batchNorms().stream().allMatch(b -> b.mode().equals("FROZEN_STATS")));
        assertEquals(new InspectReport.BnRow("bn1", "FROZEN_STATS", "batchnorm: auto (affine frozen)"),
                r.batchNorms().get(0));
    }

    @Test
    void layer4PolicyFrontierIsLayer4() {
        InspectReport r = inspect(layer4(BnPolicy.AUTO), OptimizerSettings.sgd(0.01, 0.9), 224);
        InspectReport.Frontier f = r.frontier();
        assertEquals("layer4", f.firstTrainableStage());
        assertEquals(List.of("stem", "layer1", "layer2", "layer3"), f.noGradStages());
        assertTrue(f.deterministicPrefix());
        assertTrue(f.savedActivationBytesPerImage() > 0);
        assertTrue(f.savedActivationBytesPerImage() < f.totalActivationBytesPerImage());
        assertEquals(8_393_728 + 51_300, r.trainableParams());
        assertEquals("TRAIN", row(r, "layer4.0.bn1.running_var").bnMode());
        assertEquals("updated in training", row(r, "layer4.0.bn1.running_var").decidedBy());
    }

    @Test
    void layer4FrontierSavesLessThanTheHeadFrontier() {
        long head = inspect(seed(), OptimizerSettings.sgd(0.01, 0.9), 224).frontier().savedActivationBytesPerImage();
        long l4 = inspect(layer4(BnPolicy.AUTO), OptimizerSettings.sgd(0.01, 0.9), 224).frontier()
                .savedActivationBytesPerImage();
        assertTrue(l4 < head, l4 + " vs " + head);
    }

    @Test
    void prefixWithUpdatingBatchNormIsNotDeterministic() {
        InspectReport.Frontier f = inspect(layer4(BnPolicy.TRAIN), OptimizerSettings.sgd(0.01, 0.9), 224).frontier();
        assertEquals("layer4", f.firstTrainableStage());
        assertFalse(f.deterministicPrefix(), "batchnorm: train updates running statistics in the frozen prefix");
        InspectReport.Frontier stats = inspect(layer4(BnPolicy.FREEZE_STATS), OptimizerSettings.sgd(0.01, 0.9), 224)
                .frontier();
        assertTrue(stats.deterministicPrefix());
    }

    @Test
    void frozenStagesFrontier() {
        InspectReport.Frontier f = inspect(new FreezePolicy(true, 2, List.of(), BnPolicy.AUTO),
                OptimizerSettings.sgd(0.01, 0.9), 224).frontier();
        assertEquals("layer3", f.firstTrainableStage());
        assertEquals(List.of("stem", "layer1", "layer2"), f.noGradStages());
        assertTrue(f.deterministicPrefix());
    }

    @Test
    void fullFineTuningHasNoFrontier() {
        InspectReport.Frontier f = inspect(FreezePolicy.trainAll(), OptimizerSettings.sgd(0.01, 0.9), 224).frontier();
        assertEquals("stem", f.firstTrainableStage());
        assertEquals(List.of(), f.noGradStages());
        assertEquals(0, f.savedActivationBytesPerImage());
    }

    @Test
    void activationEstimateScalesWithImageArea() {
        InspectReport.Frontier big = inspect(seed(), OptimizerSettings.sgd(0.01, 0.9), 224).frontier();
        InspectReport.Frontier small = inspect(seed(), OptimizerSettings.sgd(0.01, 0.9), 112).frontier();
        assertEquals(big.savedActivationBytesPerImage() / 4.0, small.savedActivationBytesPerImage(),
                big.savedActivationBytesPerImage() * 1e-6);
    }

    @Test
    void groupsAndDecayShowInTheRows() {
        OptimizerSettings s = new OptimizerSettings("sgd", 0.01, 0.9, false, 0, 1e-4, 0.9, 0.999, 1e-8, false,
                List.of(new OptimizerSettings.GroupSettings("layer4.*", 0.1, null)));
        InspectReport r = inspect(layer4(BnPolicy.AUTO), s, 224);
        assertEquals(0.001, row(r, "layer4.1.conv2.weight").lr(), 1e-15);
        assertEquals(1e-4, row(r, "layer4.1.conv2.weight").weightDecay());
        assertEquals(0.0, row(r, "layer4.1.bn2.weight").weightDecay(), "no decay on BN affine by default");
        assertEquals(0.01, row(r, "fc.weight").lr());
        assertNull(row(r, "layer3.1.conv2.weight").lr());
    }

    @Test
    void textReportHasTotalsAndFrontier() {
        String text = inspect(seed(), OptimizerSettings.sgd(0.01, 0.9), 224).toText();
        assertTrue(text.contains("trainable parameters: 51,300 (0.46%)"), text);
        assertTrue(text.contains("frozen parameters:    11,176,512"), text);
        assertTrue(text.contains("BatchNorm layers: 20, 20 with frozen statistics, 0 updating"), text);
        assertTrue(text.contains(
                "backward frontier: head — stem, layer1, layer2, layer3, layer4 run without autograd"), text);
        assertTrue(text.contains("the prefix is a fixed function (cacheable)"), text);
    }
}
