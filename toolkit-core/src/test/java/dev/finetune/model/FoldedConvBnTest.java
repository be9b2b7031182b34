package dev.finetune.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Parameter;
import ai.djl.training.ParameterStore;
import dev.finetune.engine.Engines;
import dev.finetune.policy.FreezePlan;
import dev.finetune.policy.FreezePolicy;
import org.junit.jupiter.api.Test;

/** A folded conv+BN computes what the pair computes, alone and across the whole frozen ResNet-18 backbone. */
class FoldedConvBnTest {

    @Test
    void foldedPairEqualsConvThenFrozenBn() {
        Engines.pytorch().setRandomSeed(7);
        try (NDManager m = NDManager.newBaseManager()) {
            Conv2d conv = new Conv2d(8, 16, 3, 2, 1);
            BatchNorm2d bn = new BatchNorm2d(16);
            conv.initialize(m, DataType.FLOAT32, new Shape(2, 8, 15, 15));
            bn.initialize(m, DataType.FLOAT32, new Shape(2, 16, 8, 8));
            randomizeBn(bn, m);
            freeze(conv.weight(), bn.weight(), bn.bias());
            bn.setMode(BnMode.FROZEN_STATS);
            NDArray x = m.randomNormal(new Shape(2, 8, 15, 15));
            ParameterStore ps = new ParameterStore(m, false);
            try (var g = Engines.noGrad();
                    FoldedConvBn folded = FoldedConvBn.fold(conv, bn, m)) {
                // training=true: a FROZEN_STATS BN must still use its running statistics.
                NDArray expected = bn.forward(ps, conv.forward(ps, new NDList(x), true), true).singletonOrThrow();
                NDArray actual = folded.forward(x);
                assertEquals(expected.getShape(), actual.getShape());
                float diff = expected.sub(actual).abs().max().getFloat();
                assertTrue(diff < 1e-4, "folded output differs by " + diff);
                assertTrue(expected.abs().max().getFloat() > 1, "the statistics should be non-trivial");
            }
        }
    }

    /**
     * The fold runs a slice of output channels at a time (bounded float64 scratch); that must give, bit for bit, the
     * one-pass float64 fold {@code float32(w64 · s64)}: for layer4's 512×512×3×3 (many slices and a short last one),
     * a biased 3×3 conv as VGG's, and a small 1×1 (one slice).
     */
    @Test
    void slicedFoldEqualsTheOnePassFloat64Fold() {
        Engines.pytorch().setRandomSeed(13);
        int[][] shapes = {{512, 512, 3, 0}, {300, 200, 3, 1}, {16, 8, 1, 0}};
        for (int[] c : shapes) {
            try (NDManager m = NDManager.newBaseManager()) {
                Conv2d conv = new Conv2d(c[0], c[1], c[2], 1, c[2] / 2, 1, c[3] == 1);
                BatchNorm2d bn = new BatchNorm2d(c[1]);
                Shape in = new Shape(1, c[0], 4, 4);
                conv.initialize(m, DataType.FLOAT32, in);
                bn.initialize(m, DataType.FLOAT32, new Shape(1, c[1], 4, 4));
                randomizeBn(bn, m);
                if (conv.bias() != null) {
                    m.randomUniform(-1f, 1f, new Shape(c[1])).copyTo(conv.bias().getArray());
                    freeze(conv.bias());
                }
                freeze(conv.weight(), bn.weight(), bn.bias());
                bn.setMode(BnMode.FROZEN_STATS);
                NDArray gamma = bn.weight().getArray().toType(DataType.FLOAT64, true);
                NDArray var = bn.runningVar().getArray().toType(DataType.FLOAT64, true);
                NDArray scale = gamma.div(var.add(1e-5).sqrt());
                NDArray expectedWeight = conv.weight().getArray().toType(DataType.FLOAT64, true)
                        .mul(scale.reshape(new Shape(c[1], 1, 1, 1))).toType(DataType.FLOAT32, true);
                NDArray shift = bn.bias().getArray().toType(DataType.FLOAT64, true)
                        .sub(bn.runningMean().getArray().toType(DataType.FLOAT64, true).mul(scale));
                if (conv.bias() != null) {
                    shift = shift.add(conv.bias().getArray().toType(DataType.FLOAT64, true).mul(scale));
                }
                NDArray expectedBias = shift.toType(DataType.FLOAT32, true);
                try (FoldedConvBn folded = FoldedConvBn.fold(conv, bn, m)) {
                    String what = c[0] + "->" + c[1] + " " + c[2] + "x" + c[2];
                    assertEquals(expectedWeight.getShape(), folded.weight().getShape(), what);
                    assertTrue(expectedWeight.eq(folded.weight()).all().getBoolean(),
                            what + ": folded weight differs from the one-pass fold by "
                                    + expectedWeight.sub(folded.weight()).abs().max().getFloat());
                    assertTrue(expectedBias.eq(folded.bias()).all().getBoolean(), what + ": folded bias differs");
                    assertTrue(folded.weight().abs().max().getFloat() > 0, what + ": a fold of zeros proves nothing");
                }
            }
        }
    }

    @Test
    void refusesPairsThatCanChange() {
        Engines.pytorch();
        try (NDManager m = NDManager.newBaseManager()) {
            Conv2d conv = new Conv2d(4, 4, 1, 1, 0);
            BatchNorm2d bn = new BatchNorm2d(4);
            conv.initialize(m, DataType.FLOAT32, new Shape(1, 4, 4, 4));
            bn.initialize(m, DataType.FLOAT32, new Shape(1, 4, 4, 4));
            freeze(conv.weight(), bn.weight(), bn.bias());
            var e = assertThrows(IllegalArgumentException.class, () -> FoldedConvBn.fold(conv, bn, m));
            assertTrue(e.getMessage().contains("TRAIN mode"), e.getMessage());
            bn.setMode(BnMode.FROZEN_STATS);
            conv.weight().freeze(false);
            e = assertThrows(IllegalArgumentException.class, () -> FoldedConvBn.fold(conv, bn, m));
            assertTrue(e.getMessage().contains("conv weight trains"), e.getMessage());
        }
    }

    @Test
    void foldedBackboneEqualsFrozenResNet18Prefix() {
        Engines.pytorch().setRandomSeed(11);
        try (NDManager m = NDManager.newBaseManager()) {
            ResNet net = ResNet.create(ResNetArch.RESNET18, 10).initialize(m);
            net.batchNorms().forEach(n -> randomizeBn(n.bn(), m));
            FreezePlan.applyTo(net, FreezePolicy.linearProbe());
            NDArray x = m.randomNormal(new Shape(2, 3, 64, 64));
            ParameterStore ps = new ParameterStore(m, false);
            try (var g = Engines.noGrad()) {
                NDArray expected = net.forwardStages(ps, new NDList(x), true, 0, 5).singletonOrThrow();
                float scale = Math.max(1, expected.abs().max().getFloat());
                // NCHW folding is exact math on every host; channels-last is what the engine may get wrong on some
                // CPUs (an AMD Zen 5 host did), so it is only ever run behind the guard, which must equal the plain
                // network whatever this host's kernels do.
                try (FoldedPrefix p = FoldedPrefix.fold(net, 5, FoldedPrefix.Layout.CONTIGUOUS, m)) {
                    assertClose(expected, p.forward(x), scale, "CONTIGUOUS");
                }
                for (FoldedPrefix.Layout layout : FoldedPrefix.Layout.values()) {
                    try (GuardedPrefix p = GuardedPrefix.fold(net, ps, 5, layout, m)) {
                        assertClose(expected, p.forward(x), scale, "guarded " + layout);
                        System.out.println("guarded " + layout + " on this host: " + p.describe());
                    }
                }
            }
        }
    }

    private static void assertClose(NDArray expected, NDArray actual, float scale, String what) {
        assertEquals(new Shape(2, 512, 2, 2), actual.getShape());
        float diff = expected.sub(actual).abs().max().getFloat();
        // Relative to the output's scale: eight residual units of random statistics amplify it.
        assertTrue(diff <= 1e-4 * scale, what + ": folded backbone differs by " + diff + " (max |output| " + scale
                + ")");
    }

    @Test
    void refusesAPrefixThatTrains() {
        Engines.pytorch();
        try (NDManager m = NDManager.newBaseManager()) {
            ResNet net = ResNet.create(ResNetArch.RESNET18, 10).initialize(m);
            FreezePlan.applyTo(net, FreezePolicy.linearProbe());
            assertEquals(5, FoldedPrefix.foldablePrefix(net), "linear probe: the whole backbone");
            FreezePlan.applyTo(net, FreezePolicy.linearProbe().withRule(FreezePolicy.Rule.train("t", "layer3")));
            assertEquals(3, FoldedPrefix.foldablePrefix(net), "layer3 trains: stem, layer1, layer2");
            FreezePlan.applyTo(net, FreezePolicy.trainAll());
            assertEquals(0, FoldedPrefix.foldablePrefix(net));
            var e = assertThrows(IllegalArgumentException.class,
                    () -> FoldedPrefix.fold(net, 2, FoldedPrefix.Layout.CONTIGUOUS, m));
            assertTrue(e.getMessage().startsWith("cannot fold conv1 + bn1"), e.getMessage());
        }
    }

    /** Statistics and affine parameters far from the identity: gamma, var in [0.5, 2], beta, mean in [-1, 1]. */
    private static void randomizeBn(BatchNorm2d bn, NDManager m) {
        Shape c = new Shape(bn.channels());
        m.randomUniform(0.5f, 2f, c).copyTo(bn.weight().getArray());
        m.randomUniform(-1f, 1f, c).copyTo(bn.bias().getArray());
        m.randomUniform(-1f, 1f, c).copyTo(bn.runningMean().getArray());
        m.randomUniform(0.5f, 2f, c).copyTo(bn.runningVar().getArray());
    }

    private static void freeze(Parameter... params) {
        for (Parameter p : params) {
            p.freeze(true);
        }
    }
}
