package dev.finetune.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.ParameterStore;
import dev.finetune.checkpoint.Checkpoint;
import dev.finetune.checkpoint.Checkpoints;
import dev.finetune.engine.Engines;
import dev.finetune.testing.TorchReference;
import dev.finetune.weights.LoadReport;
import dev.finetune.weights.WeightLoader;
import org.junit.jupiter.api.Test;

/** Our ResNet-18 on torchvision's weights gives torchvision's outputs (values from Debian's torchvision). */
class ResNetParityTest {

    @Test
    void namesAreTorchvisionStateDictKeys() {
        Engines.pytorch();
        try (NDManager m = NDManager.newBaseManager()) {
            ResNet net = ResNet.create(ResNetArch.RESNET18, 1000).initialize(m);
            var names = net.namedTensors().keySet();
            // 102 tensors: torchvision's 122 state_dict keys minus the 20 num_batches_tracked counters.
            assertEquals(102, names.size());
            assertTrue(names.contains("conv1.weight"));
            assertTrue(names.contains("layer2.0.downsample.0.weight"));
            assertTrue(names.contains("layer2.0.downsample.1.running_var"));
            assertTrue(names.contains("layer4.1.bn2.running_var"));
            assertTrue(!names.contains("layer1.0.downsample.0.weight"), "layer1 has no downsample in torchvision");
            long params = net.namedTensors().entrySet().stream()
                    .filter(e -> !e.getKey().contains("running_"))
                    .mapToLong(e -> e.getValue().getShape().size())
                    .sum();
            assertEquals(11_689_512L, params, "torchvision resnet18 has 11,689,512 parameters");
        }
    }

    @Test
    void theSameWeightsThroughSafetensorsGiveTheSameLogits(@org.junit.jupiter.api.io.TempDir java.nio.file.Path tmp)
            throws Exception {
        TorchReference ref = TorchReference.get();
        Checkpoint pth = Checkpoints.read(ref.checkpoint());
        java.nio.file.Path st = tmp.resolve("resnet18.safetensors");
        dev.finetune.checkpoint.SafetensorsWriter.write(st, pth.tensors(), java.util.Map.of(), "F32");
        Checkpoint safetensors = Checkpoints.read(st);
        assertEquals(dev.finetune.checkpoint.CheckpointFormat.SAFETENSORS, safetensors.format());
        Engines.pytorch();
        try (NDManager m = NDManager.newBaseManager()) {
            ResNet net = ResNet.create(ResNetArch.RESNET18, 1000).initialize(m);
            assertTrue(WeightLoader.load(net, safetensors, WeightLoader.Options.defaults()).isClean());
            NDArray x = m.create(ref.array("input"), new Shape(ref.shape("input")));
            float[] eval;
            try (var g = Engines.noGrad()) {
                eval = net.forward(new ParameterStore(m, false), new NDList(x), false).singletonOrThrow()
                        .toFloatArray();
            }
            double d = TorchReference.maxAbsDiff(eval, ref.array("eval_logits"));
            assertTrue(d < 1e-4, "safetensors eval logits differ from torchvision by " + d);
        }
    }

    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.EnumSource(value = ResNetArch.class, names = {"RESNET34", "RESNET50"})
    void resnet34And50MatchTorchvision(ResNetArch arch) throws Exception {
        java.nio.file.Path tmp = TorchReference.cached("variants-reference", "resnet50_logits.f32",
                "resnet_variants.py");
        String name = arch.configName();
        Checkpoint ckpt = Checkpoints.read(tmp.resolve(name + ".pth"));
        Engines.pytorch();
        try (NDManager m = NDManager.newBaseManager()) {
            ResNet net = ResNet.create(arch, 1000).initialize(m);
            LoadReport report = WeightLoader.load(net, ckpt, WeightLoader.Options.defaults());
            assertTrue(report.isClean(), report.summary());
            float[] in = TorchReference.readF32(tmp.resolve("variants_input.f32"));
            NDArray x = m.create(in, new Shape(2, 3, 64, 64));
            float[] logits;
            try (var g = Engines.noGrad()) {
                logits = net.forward(new ParameterStore(m, false), new NDList(x), false).singletonOrThrow()
                        .toFloatArray();
            }
            double d = TorchReference.maxAbsDiff(logits, TorchReference.readF32(tmp.resolve(name + "_logits.f32")));
            System.out.printf("parity: %s eval logits max |diff| %.3g%n", name, d);
            assertTrue(d < 1e-4, name + " eval logits differ from torchvision by " + d);
        }
    }


    @Test
    void evalAndTrainModeMatchTorchvision() throws Exception {
        TorchReference ref = TorchReference.get();
        Checkpoint ckpt = Checkpoints.read(ref.checkpoint());
        Engines.pytorch();
        try (NDManager m = NDManager.newBaseManager()) {
            ResNet net = ResNet.create(ResNetArch.RESNET18, 1000).initialize(m);
            LoadReport report = WeightLoader.load(net, ckpt, WeightLoader.Options.defaults());
            assertTrue(report.isClean(), report.summary());
            assertEquals(102, report.matched().size());
            assertEquals(20, report.ignored().size());
            NDArray x = m.create(ref.array("input"), new Shape(ref.shape("input")));
            ParameterStore ps = new ParameterStore(m, false);
            float[] eval;
            try (var g = Engines.noGrad()) {
                eval = net.forward(ps, new NDList(x), false).singletonOrThrow().toFloatArray();
            }
            double evalDiff = TorchReference.maxAbsDiff(eval, ref.array("eval_logits"));
            System.out.printf("parity: eval logits max |diff| %.3g%n", evalDiff);
            assertTrue(evalDiff < 1e-4, "eval logits differ from torchvision by " + evalDiff);

            float[] train;
            try (var g = Engines.noGrad()) {
                train = net.forward(ps, new NDList(x), true).singletonOrThrow().toFloatArray();
            }
            double trainDiff = TorchReference.maxAbsDiff(train, ref.array("train_logits"));
            System.out.printf("parity: train-mode logits max |diff| %.3g%n", trainDiff);
            assertTrue(trainDiff < 1e-4, "train-mode logits differ from torchvision by " + trainDiff);
            var t = net.namedTensors();
            assertTrue(TorchReference.maxAbsDiff(t.get("bn1.running_mean").getArray().toFloatArray(),
                    ref.array("train_running_mean_bn1")) < 1e-5, "running_mean update (momentum 0.1)");
            assertTrue(TorchReference.maxAbsDiff(t.get("bn1.running_var").getArray().toFloatArray(),
                    ref.array("train_running_var_bn1")) < 1e-4, "running_var update (unbiased)");
            assertTrue(TorchReference.maxAbsDiff(t.get("layer4.1.bn2.running_var").getArray().toFloatArray(),
                    ref.array("train_running_var_layer4.1.bn2")) < 1e-4);
        }
    }
}
