package dev.finetune.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.ParameterStore;
import dev.finetune.checkpoint.Checkpoints;
import dev.finetune.engine.CpuFeatures;
import dev.finetune.engine.Engines;
import dev.finetune.engine.Warnings;
import dev.finetune.policy.FreezePlan;
import dev.finetune.policy.FreezePolicy;
import dev.finetune.testing.TorchReference;
import dev.finetune.weights.WeightLoader;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * {@code precision: bf16}: the bf16 prefix against our plain float32 network, PyTorch's float32 and PyTorch's own bf16
 * ({@code model.to(torch.bfloat16)}, channels-last) on realistic weights (the trained ResNet-18 of models/, a ResNet-50
 * with calibrated BN statistics) at four input sizes; the guard's fallback on a (simulated) wrong bf16 kernel; and the
 * refusal on a CPU without bf16 instructions. bf16 cannot equal float32: the bound is bf16's own error as PyTorch
 * shows it on the same inputs (the figures are printed).
 */
class Bf16PrefixTest {
    private static final int[][] INPUTS = {{32, 2}, {64, 2}, {97, 2}, {224, 1}};

    @AfterEach
    void clear() {
        KernelFaults.setBf16Wrong(false);
        System.clearProperty(CpuFeatures.FLAGS_PROPERTY);
        Warnings.setSink(line -> System.err.println("warning: " + line));
    }

    @Test
    void bf16PrefixIsWithinBf16ErrorOfFloat32AndOfPyTorchsBf16() throws Exception {
        if (!CpuFeatures.hasBf16()) {
            refusedWithoutBf16();
            return;
        }
        Path ref = TorchReference.cached("bf16-reference", "DONE", "bf16_reference.py",
                TorchReference.repoRoot().toString());
        Engines.pytorch();
        // ResNet-50 (bottlenecks; ~10 s) in .ci/run's exhaustive step, to keep scripts/test.sh under 5 minutes.
        for (String name : Boolean.getBoolean("finetune.test.exhaustive") ? List.of("resnet18", "resnet50")
                : List.of("resnet18")) {
            try (NDManager m = NDManager.newBaseManager()) {
                ResNet net = load(name, ref, m);
                ParameterStore ps = new ParameterStore(m, false);
                try (Bf16Prefix p = Bf16Prefix.fold(net, ps, 5, m)) {
                    for (int[] in : INPUTS) {
                        int side = in[0];
                        Shape shape = new Shape(in[1], 3, side, side);
                        NDArray x = read(m, ref, name, side, "input", shape);
                        NDArray ours = p.forward(x);
                        NDArray plain;
                        try (var g = Engines.noGrad()) {
                            plain = net.forwardStages(ps, new NDList(x), true, 0, 5).singletonOrThrow();
                        }
                        NDArray torchFp32 = read(m, ref, name, side, "fp32", plain.getShape());
                        NDArray torchBf16 = read(m, ref, name, side, "bf16", plain.getShape());
                        String at = name + " " + side + "x" + side;
                        Err ownFp32 = Err.of(plain, torchFp32);
                        assertTrue(ownFp32.max() <= GuardedPrefix.TOLERANCE, at + ": our float32 vs PyTorch's " + ownFp32);
                        Err vsPlain = Err.of(ours, plain);
                        Err vsTorch = Err.of(ours, torchFp32);
                        Err torchOwn = Err.of(torchBf16, torchFp32);
                        Err vsTorchBf16 = Err.of(ours, torchBf16);
                        System.out.printf("%s: ours bf16 vs our fp32 %s; vs PyTorch fp32 %s; PyTorch bf16 vs"
                                + " PyTorch fp32 %s; ours vs PyTorch bf16 %s%n", at, vsPlain, vsTorch, torchOwn,
                                vsTorchBf16);
                        // Within bf16's error as PyTorch's own bf16 shows it on the same input (1.5x, and at least
                        // 1 % relative L2: our folded BN rounds once where PyTorch's rounds twice).
                        double rmsBound = Math.max(0.01, 1.5 * torchOwn.rms());
                        assertTrue(vsTorch.rms() <= rmsBound, at + ": relative L2 " + vsTorch + " > " + rmsBound);
                        assertTrue(vsPlain.rms() <= rmsBound, at + ": relative L2 " + vsPlain + " > " + rmsBound);
                        assertTrue(vsPlain.rms() <= Bf16Prefix.TOLERANCE, at + ": the guard's bound " + vsPlain);
                        assertTrue(vsTorchBf16.rms() <= 2 * rmsBound, at + ": vs PyTorch bf16 " + vsTorchBf16);
                    }
                    FastPathReport r = p.report();
                    assertTrue(p.isBf16(), r.toMap().toString());
                    assertEquals(INPUTS.length, r.checks().size(), "one check per input shape: " + r.toMap());
                    assertEquals("folded, bf16, channels-last", r.inUse());
                    assertTrue(r.checks().stream().allMatch(FastPathReport.Check::passed), r.toMap().toString());
                }
            }
        }
    }

    /**
     * The grouped (ResNeXt) and wide bottlenecks through the bf16 program, whole network to the logits, against
     * torchvision's float32 logits of the families reference (64×64, calibrated BN statistics).
     */
    @Test
    void groupedAndWideBottlenecksRunInBf16() throws Exception {
        // Two 25M-69M-parameter networks (~24 s): .ci/run's exhaustive step, to keep scripts/test.sh under 5 min.
        org.junit.jupiter.api.Assumptions.assumeTrue(Boolean.getBoolean("finetune.test.exhaustive"),
                "exhaustive runs only");
        if (!CpuFeatures.hasBf16()) {
            refusedWithoutBf16();
            return;
        }
        Path dir = FamilyParityTest.reference();
        Engines.pytorch();
        for (String name : List.of("resnext50_32x4d", "wide_resnet50_2")) {
            try (NDManager m = NDManager.newBaseManager()) {
                ResNet net = (ResNet) Architectures.parse(name).create(1000).initialize(m);
                WeightLoader.load(net, Checkpoints.read(dir.resolve(name + ".pth")), WeightLoader.Options.defaults());
                FreezePlan.applyTo(net, FreezePolicy.linearProbe());
                ParameterStore ps = new ParameterStore(m, false);
                NDArray x = m.create(TorchReference.readF32(dir.resolve("input.f32")), new Shape(2, 3, 64, 64));
                NDArray torch = m.create(TorchReference.readF32(dir.resolve(name + "_eval.f32")), new Shape(2, 1000));
                try (Bf16Prefix p = Bf16Prefix.fold(net, ps, 5, m); var g = Engines.noGrad()) {
                    NDArray logits = net.forwardStages(ps, new NDList(p.forward(x)), false, 5, 6).singletonOrThrow();
                    Err e = Err.of(logits, torch);
                    System.out.printf("%s 64x64: bf16 logits vs torchvision float32 %s%n", name, e);
                    assertTrue(p.isBf16(), p.report().toMap().toString());
                    assertTrue(e.rms() > 0 && e.rms() <= Bf16Prefix.TOLERANCE, name + ": " + e);
                }
            }
        }
    }

    @Test
    void wrongBf16KernelFallsBackToFloat32() throws Exception {
        if (!CpuFeatures.hasBf16()) {
            refusedWithoutBf16();
            return;
        }
        List<String> warnings = new ArrayList<>();
        Warnings.setSink(warnings::add);
        Engines.pytorch().setRandomSeed(3);
        KernelFaults.setBf16Wrong(true);
        try (NDManager m = NDManager.newBaseManager()) {
            ResNet net = ResNet.create(ResNetArch.RESNET18, 10).initialize(m);
            FreezePlan.applyTo(net, FreezePolicy.linearProbe());
            ParameterStore ps = new ParameterStore(m, false);
            try (Bf16Prefix p = Bf16Prefix.fold(net, ps, 5, m)) {
                for (int i = 0; i < 2; i++) {
                    NDArray x = m.randomNormal(new Shape(2, 3, 64, 64));
                    NDArray plain;
                    try (var g = Engines.noGrad()) {
                        plain = net.forwardStages(ps, new NDList(x), true, 0, 5).singletonOrThrow();
                    }
                    Err e = Err.of(p.forward(x), plain);
                    assertTrue(e.max() <= GuardedPrefix.TOLERANCE, "batch " + i + " after the fallback: " + e);
                }
                assertFalse(p.isBf16());
                FastPathReport r = p.report();
                assertTrue(r.degraded());
                assertTrue(r.fallbacks().get(0).startsWith("the bf16 prefix differs from the plain float32 network"),
                        r.fallbacks().toString());
                assertFalse(r.checks().get(0).passed());
                assertTrue(r.inUse().startsWith("float32 folded"), r.inUse());
            }
        }
        assertEquals(1, warnings.size(), "said once: " + warnings);
    }

    /**
     * The script runs the stem a few images at a time (16 MiB of conv output: 10 images at 224 in bf16); at 11×224
     * the pieces are 10 and 1. Every image, the last one alone in its piece included, must be within bf16's error of
     * the float32 plain network: a piece copied to the wrong rows would put an image's features on another.
     */
    @Test
    void bf16StemInPiecesKeepsEveryImageInItsRow() {
        if (!CpuFeatures.hasBf16()) {
            return;
        }
        Engines.pytorch().setRandomSeed(6);
        try (NDManager m = NDManager.newBaseManager()) {
            ResNet net = ResNet.create(ResNetArch.RESNET18, 10).initialize(m);
            FreezePlan.applyTo(net, FreezePolicy.linearProbe());
            ParameterStore ps = new ParameterStore(m, false);
            try (Bf16Prefix p = Bf16Prefix.fold(net, ps, 2, m)) {
                NDArray x = m.randomNormal(new Shape(11, 3, 224, 224));
                NDArray plain;
                try (var g = Engines.noGrad()) {
                    plain = net.forwardStages(ps, new NDList(x), true, 0, 2).singletonOrThrow();
                }
                NDArray bf16 = p.forward(x);
                assertTrue(p.isBf16(), "the bf16 prefix passed its own check: " + p.report());
                for (int i = 0; i < 11; i++) {
                    Err e = Err.of(bf16.get(i), plain.get(i));
                    assertTrue(e.rms() < 0.05 && e.rms() > 0, "image " + i + " bf16 vs float32: " + e);
                }
            }
        }
    }

    @Test
    void cpuWithoutBf16IsRefusedNamingIt() {
        System.setProperty(CpuFeatures.FLAGS_PROPERTY, "fpu sse2 avx2 avx512f");
        refusedWithoutBf16();
        System.setProperty(CpuFeatures.FLAGS_PROPERTY, "fpu avx512f avx512_bf16");
        assertEquals(null, Precision.BF16.whyUnavailable());
        assertEquals(null, Precision.FP32.whyUnavailable());
        assertEquals(Precision.BF16, Precision.parse("BF16"));
        assertThrows(IllegalArgumentException.class, () -> Precision.parse("fp16"));
    }

    /** {@code train.precision: bf16} in a fine-tuner: the cached features are the bf16 prefix's, the head trains. */
    @Test
    void fineTunerRunsTheFrozenPrefixInBf16AndRefusesWhatCannot() {
        if (CpuFeatures.hasBf16()) {
            Engines.pytorch().setRandomSeed(4);
            try (dev.finetune.train.FineTuner bf = tuner(ResNetArch.RESNET18, FreezePolicy.linearProbe(), Precision.BF16);
                    dev.finetune.train.FineTuner fp = tuner(ResNetArch.RESNET18, FreezePolicy.linearProbe(),
                            Precision.FP32);
                    NDManager m = NDManager.newBaseManager()) {
                NDArray x = m.randomNormal(new Shape(4, 3, 48, 48));
                Err e = Err.of(bf.prefixFeatures(x, 5), fp.prefixFeatures(x, 5));
                assertTrue(e.rms() < 0.05 && e.rms() > 0, "bf16 features vs float32: " + e);
                float loss = bf.trainStep(x, m.create(new int[] {0, 1, 2, 3}), 0.1);
                assertTrue(Float.isFinite(loss));
                assertEquals(5, bf.foldedStages());
                assertEquals("folded, bf16, channels-last", bf.fastPathReports().get(0).inUse());
            }
        }
        // What cannot run bf16 is refused, naming train.precision and the fix.
        System.setProperty(CpuFeatures.FLAGS_PROPERTY, "avx512f avx512_bf16");
        assertEquals("train.precision: bf16 runs the frozen, BN-folded prefix, and this freeze policy leaves none: the"
                + " stem trains, or a frozen stage keeps BatchNorm in train mode. Freeze at least the stem (e.g."
                + " policies/last-stage.yaml), or remove train.precision",
                assertThrows(dev.finetune.ConfigException.class,
                        () -> tuner(ResNetArch.RESNET18, FreezePolicy.trainAll(), Precision.BF16)).getMessage());
        assertTrue(assertThrows(dev.finetune.ConfigException.class,
                () -> tuner(MobileNetArch.MOBILENET_V3_SMALL, FreezePolicy.linearProbe(), Precision.BF16))
                .getMessage().startsWith("train.precision: bf16 runs the frozen prefix of the ResNet family (resnet*,"
                        + " resnext*, wide_resnet*) only, and this model is mobilenet_v3_small"));
        System.setProperty(CpuFeatures.FLAGS_PROPERTY, "avx512f");
        String m = assertThrows(dev.finetune.ConfigException.class,
                () -> tuner(ResNetArch.RESNET18, FreezePolicy.linearProbe(), Precision.BF16)).getMessage();
        assertTrue(m.startsWith("train.precision: bf16 needs a CPU with bfloat16 instructions") && m.endsWith(
                "; remove train.precision or set it to fp32"), m);
    }

    private static dev.finetune.train.FineTuner tuner(Architecture arch, FreezePolicy policy, Precision precision) {
        return dev.finetune.train.FineTuner.builder().arch(arch).headClasses(4).policy(policy).seed(7)
                .prefixPrecision(precision).build();
    }

    private static void refusedWithoutBf16() {
        try (NDManager m = NDManager.newBaseManager()) {
            ResNet net = ResNet.create(ResNetArch.RESNET18, 10).initialize(m);
            FreezePlan.applyTo(net, FreezePolicy.linearProbe());
            IllegalStateException e = assertThrows(IllegalStateException.class,
                    () -> Bf16Prefix.fold(net, new ParameterStore(m, false), 5, m));
            assertTrue(e.getMessage().startsWith("bf16 needs a CPU with bfloat16 instructions (avx512_bf16 or"
                    + " amx_bf16)"), e.getMessage());
        }
    }

    private static ResNet load(String name, Path ref, NDManager m) {
        ResNet net;
        if (name.equals("resnet18")) {
            net = ResNet.create(ResNetArch.RESNET18, 5).initialize(m);
            WeightLoader.load(net, Checkpoints.read(TorchReference.repoRoot().resolve(
                    "models/resnet18-fmnist-a.safetensors").toString()), WeightLoader.Options.defaults());
        } else {
            net = ResNet.create(ResNetArch.RESNET50, 1000).initialize(m);
            WeightLoader.load(net, Checkpoints.read(ref.resolve("resnet50.pth").toString()),
                    WeightLoader.Options.defaults());
        }
        FreezePlan.applyTo(net, FreezePolicy.linearProbe());
        return net;
    }

    private static NDArray read(NDManager m, Path ref, String name, int side, String kind, Shape shape)
            throws java.io.IOException {
        return m.create(TorchReference.readF32(ref.resolve(name + "_" + side + "_" + kind + ".f32")), shape);
    }

    /** Largest elementwise difference over {@code max(1, max|ref|)}, and relative L2 error {@code ||a-b|| / ||b||}. */
    private record Err(double max, double rms) {
        static Err of(NDArray a, NDArray ref) {
            NDArray d = a.sub(ref);
            double scale = Math.max(1, ref.abs().max().getFloat());
            double rms = Math.sqrt(d.square().sum().getFloat() / ref.square().sum().getFloat());
            return new Err(d.abs().max().getFloat() / scale, rms);
        }

        @Override
        public String toString() {
            return String.format("max %.3g, L2 %.3g", max, rms);
        }
    }
}
