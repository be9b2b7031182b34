package dev.finetune.predict;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.finetune.engine.Engines;
import dev.finetune.testing.TorchReference;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code predict} on a torchvision checkpoint gives PyTorch's probabilities for the same image files, with
 * torchvision's evaluation preprocessing (Resize 256, CenterCrop 224, ImageNet mean/std) of
 * {@code Image.open(f).convert("RGB")}, and records no graph. The files are a square PNG and non-square odd sizes:
 * JPEG (4:2:0, 4:2:2, progressive) and PNG (RGB, palette, grayscale).
 */
class PredictorParityTest {
    @TempDir
    Path tmp;

    @Test
    void probabilitiesMatchTorchvisionOnTheSameFiles() throws Exception {
        TorchReference ref = TorchReference.get();
        TorchReference.runPython(TorchReference.repoRoot().resolve("scripts/reference/predict_reference.py")
                .toString(), ref.checkpoint().toString(), tmp.toString());
        JsonNode expected = new ObjectMapper().readTree(tmp.resolve("probs.json").toFile());
        List<String> names = new ArrayList<>();
        expected.fieldNames().forEachRemaining(names::add);
        assertEquals(7, names.size());
        try (TrainedModel model = TrainedModel.open(ref.checkpoint().toString(), "resnet18")) {
            assertEquals(224, model.preprocessing().imageSize());
            assertEquals(256, model.preprocessing().resize());
            boolean gradBefore = Engines.isGradEnabled();
            List<Path> files = names.stream().map(tmp::resolve).toList();
            List<Predictor.Prediction> predictions = new Predictor(model).predict(files, 1000);
            assertEquals(gradBefore, Engines.isGradEnabled(), "grad mode restored on this thread");
            double worstOfAll = 0;
            for (int f = 0; f < names.size(); f++) {
                JsonNode reference = expected.get(names.get(f));
                List<Predictor.Scored> top = predictions.get(f).top();
                double worst = 0;
                for (Predictor.Scored s : top) {
                    worst = Math.max(worst,
                            Math.abs(s.probability() - reference.get("probs").get(s.index()).asDouble()));
                }
                System.out.printf(Locale.ROOT, "%-32s max |p - p_torchvision| = %.2e%n", names.get(f), worst);
                assertTrue(worst < 1e-4, names.get(f) + ": probabilities differ from torchvision's by " + worst);
                for (int i = 0; i < 5; i++) {
                    assertEquals(reference.get("top5").get(i).asInt(), top.get(i).index(), names.get(f) + " top-5");
                }
                worstOfAll = Math.max(worstOfAll, worst);
            }
            System.out.printf(Locale.ROOT, "all files: max |p - p_torchvision| = %.2e%n", worstOfAll);
        }
    }

    /**
     * Other families, from a seeded torchvision state_dict saved under the file name torchvision publishes its weights
     * as, opened with no {@code --arch}: the architecture is recognized from the keys, the eval transform is the one
     * published with those weights (bicubic 256/224 for EfficientNet-B0, whose transform differs most from ResNet's),
     * and the probabilities and top 5 are torchvision's. The test script runs EfficientNet-B0; with
     * {@code -Dfinetune.test.exhaustive=true} ({@code .ci/run}) every architecture of
     * {@link dev.finetune.model.FamilyParityTest} runs.
     */
    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.MethodSource("familyArchitectures")
    void otherFamiliesRecognizedAndPredictedAsTorchvision(String arch) throws Exception {
        var entry = dev.finetune.checkpoint.TorchvisionWeights.entry(arch).orElseThrow();
        Path file = tmp.resolve(entry.file());
        java.nio.file.Files.copy(dev.finetune.model.FamilyParityTest.reference().resolve(arch + ".pth"), file);
        Path out = tmp.resolve("images");
        TorchReference.runPython(TorchReference.repoRoot().resolve("scripts/reference/predict_reference.py")
                .toString(), file.toString(), out.toString(), arch, Integer.toString(entry.resizeSize()),
                Integer.toString(entry.cropSize()), entry.interpolation());
        JsonNode expected = new ObjectMapper().readTree(out.resolve("probs.json").toFile());
        List<String> names = new ArrayList<>();
        expected.fieldNames().forEachRemaining(names::add);
        try (TrainedModel model = TrainedModel.open(file.toString(), null)) {
            assertEquals(arch, model.model().arch().configName(), "recognized from the keys");
            assertEquals(entry.cropSize(), model.preprocessing().imageSize());
            assertEquals(entry.resizeSize(), model.preprocessing().resize());
            assertEquals(entry.interpolation(), model.preprocessing().toTransformSpec().interpolation().configName());
            List<Predictor.Prediction> predictions = new Predictor(model).predict(
                    names.stream().map(out::resolve).toList(), 1000);
            double worstOfAll = 0;
            for (int f = 0; f < names.size(); f++) {
                JsonNode reference = expected.get(names.get(f));
                List<Predictor.Scored> top = predictions.get(f).top();
                for (Predictor.Scored s : top) {
                    worstOfAll = Math.max(worstOfAll,
                            Math.abs(s.probability() - reference.get("probs").get(s.index()).asDouble()));
                }
                for (int i = 0; i < 5; i++) {
                    assertEquals(reference.get("top5").get(i).asInt(), top.get(i).index(), names.get(f) + " top-5");
                }
            }
            System.out.printf(Locale.ROOT, "%s (%s): all files max |p - p_torchvision| = %.2e%n", arch,
                    entry.file(), worstOfAll);
            assertTrue(worstOfAll < 1e-4, arch + ": probabilities differ from torchvision's by " + worstOfAll);
        }
    }

    static List<String> familyArchitectures() {
        return Boolean.getBoolean("finetune.test.exhaustive")
                ? List.of(dev.finetune.model.FamilyParityTest.ARCHS.split(",")) : List.of("efficientnet_b0");
    }

    /** {@code --tta flip} and {@code --tta five-crop}: the mean of the views' probabilities equals torchvision's. */
    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(strings = {"flip", "five-crop"})
    void testTimeAugmentationMatchesTorchvision(String mode) throws Exception {
        TorchReference ref = TorchReference.get();
        Path out = tmp.resolve(mode);
        TorchReference.runPython(TorchReference.repoRoot().resolve("scripts/reference/predict_reference.py")
                .toString(), ref.checkpoint().toString(), out.toString(), "resnet18", "256", "224", "bilinear", mode);
        JsonNode expected = new ObjectMapper().readTree(out.resolve("probs.json").toFile());
        List<String> names = new ArrayList<>();
        expected.fieldNames().forEachRemaining(names::add);
        try (TrainedModel model = TrainedModel.open(ref.checkpoint().toString(), "resnet18")) {
            List<Predictor.Prediction> predictions = new Predictor(model, Tta.parse(mode)).predict(
                    names.stream().map(out::resolve).toList(), 1000);
            double worst = 0;
            for (int f = 0; f < names.size(); f++) {
                JsonNode reference = expected.get(names.get(f));
                for (Predictor.Scored s : predictions.get(f).top()) {
                    worst = Math.max(worst,
                            Math.abs(s.probability() - reference.get("probs").get(s.index()).asDouble()));
                }
                for (int i = 0; i < 5; i++) {
                    assertEquals(reference.get("top5").get(i).asInt(), predictions.get(f).top().get(i).index(),
                            names.get(f) + " top-5 with " + mode);
                }
            }
            System.out.printf(Locale.ROOT, "tta %s: all files max |p - p_torchvision| = %.2e%n", mode, worst);
            assertTrue(worst < 1e-4, mode + ": probabilities differ from torchvision's by " + worst);
        }
    }

    /** Evaluation image by image with no augmentation gives what the batched evaluator gives; flip changes it. */
    @org.junit.jupiter.api.Test
    void imageByImageEvaluationEqualsTheBatchedOne() throws Exception {
        Path root = TorchReference.repoRoot().resolve("data/fashion-mnist-b/val");
        var index = dev.finetune.data.ImageFolderIndex.scan(root);
        try (TrainedModel model = TrainedModel.open(
                TorchReference.repoRoot().resolve("models/resnet18-fmnist-a.safetensors").toString(), null)) {
            var data = new dev.finetune.data.ImageFolderDataset(index);
            var opts = dev.finetune.data.BatchLoader.Options.builder().batchSize(64)
                    .transforms(model.preprocessing().toTransformSpec()).build();
            dev.finetune.metrics.EpochMetrics batched;
            try (var loader = new dev.finetune.data.BatchLoader(data, model.manager(), opts, 0)) {
                batched = dev.finetune.train.Evaluator.evaluate(model::logits, loader, 5);
            }
            var single = new Predictor(model, Tta.NONE).evaluate(data);
            assertEquals(batched.top1(), single.top1());
            assertEquals(batched.loss(), single.loss(), 1e-5);
            assertTrue(java.util.Arrays.deepEquals(batched.confusion(), single.confusion()));
            var flipped = new Predictor(model, Tta.FLIP).evaluate(data);
            assertEquals(200, flipped.samples());
            assertTrue(flipped.loss() != single.loss(), "flip averages other views");
        }
    }

    /**
     * Test-time augmentation runs many images per forward pass (their views stacked): each image's averaged
     * probabilities equal those of the image run alone, for evaluation and prediction, folded and plain.
     */
    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(booleans = {true, false})
    void batchedViewsEqualOneImageAtATime(boolean fold) throws Exception {
        Path root = TorchReference.repoRoot().resolve("data/fashion-mnist-b/val");
        var all = new dev.finetune.data.ImageFolderDataset(dev.finetune.data.ImageFolderIndex.scan(root));
        // Every 5th image (40, all classes): at 64 tensors per pass, one full pass of 32 images and a last one of 8.
        List<dev.finetune.data.ImageDataset.Sample> some = new ArrayList<>();
        for (int i = 0; i < all.samples().size(); i += 5) {
            some.add(all.samples().get(i));
        }
        var data = new dev.finetune.data.ImageDataset() {
            @Override
            public List<String> classNames() {
                return all.classNames();
            }

            @Override
            public List<dev.finetune.data.ImageDataset.Sample> samples() {
                return some;
            }

            @Override
            public String fingerprint() {
                return all.fingerprint() + "/every-5th";
            }
        };
        try (TrainedModel model = TrainedModel.open(
                TorchReference.repoRoot().resolve("models/resnet18-fmnist-a.safetensors").toString(), null)
                .foldBatchNorm(fold)) {
            var alone = new Predictor(model, Tta.FLIP, 1).evaluate(data);
            var batched = new Predictor(model, Tta.FLIP, 64).evaluate(data);
            assertEquals(40, batched.samples());
            assertEquals(alone.top1(), batched.top1());
            assertEquals(alone.loss(), batched.loss(), 1e-5);
            assertTrue(java.util.Arrays.deepEquals(alone.confusion(), batched.confusion()));

            List<Path> files = Predictor.expand(List.of(root.resolve("bag"))).subList(0, 7);
            // flip at batch 6: three images (6 views) per pass, the last pass one image.
            var one = new Predictor(model, Tta.FLIP, 2).predict(files, 5);
            var many = new Predictor(model, Tta.FLIP, 6).predict(files, 5);
            double worst = 0;
            for (int f = 0; f < files.size(); f++) {
                assertEquals(one.get(f).file(), many.get(f).file());
                for (int i = 0; i < 5; i++) {
                    assertEquals(one.get(f).top().get(i).index(), many.get(f).top().get(i).index());
                    worst = Math.max(worst, Math.abs(one.get(f).top().get(i).probability()
                            - many.get(f).top().get(i).probability()));
                }
            }
            System.out.printf(Locale.ROOT, "flip predict, fold %s: batched vs one image max |dp| %.2e%n", fold, worst);
            assertTrue(worst < 1e-5, "batched flip differs by " + worst);
            // This model resizes to 32 and crops 32: five-crop would average one image five times, so it is refused.
            var refused = org.junit.jupiter.api.Assertions.assertThrows(dev.finetune.FinetuneException.class,
                    () -> new Predictor(model, Tta.FIVE_CROP, 12));
            assertEquals(dev.finetune.ErrorKind.USAGE, refused.kind());
            assertTrue(refused.getMessage().contains("resizes to 32 px and crops 32 px"), refused.getMessage());
            assertEquals(fold ? 1 : 0, model.fastPathReports().size());
        }
    }

    /**
     * Inference runs every stage before the head BN-folded behind the guard (channels-last for ResNets): equal to the
     * plain stage-scoped forward at two input sizes and batch sizes, on realistic weights, with the check recorded.
     */
    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(strings = {"resnet18", "mobilenet_v3_small"})
    void foldedInferenceEqualsThePlainForward(String arch) throws Exception {
        Path file = arch.equals("resnet18") ? TorchReference.get().checkpoint()
                : dev.finetune.model.FamilyParityTest.reference().resolve(arch + ".pth");
        try (TrainedModel model = TrainedModel.open(file.toString(), arch).foldBatchNorm(true);
                ai.djl.ndarray.NDManager m = model.manager().newSubManager()) {
            // ResNet's (scripted) path: each shape three times with other images — the guard checks the first batch of
            // a shape only, so later batches must run the same kernels to the same result.
            int[][] shapes = arch.equals("resnet18") ? new int[][] {{4, 224}, {1, 96}, {4, 224}, {1, 96}, {4, 224}, {1, 96}}
                    : new int[][] {{4, 224}, {1, 96}};
            for (int[] shape : shapes) {
                var x = m.randomNormal(new ai.djl.ndarray.types.Shape(shape[0], 3, shape[1], shape[1]));
                float[] fast = model.logits(x).toFloatArray();
                float[] plain;
                try (var g = dev.finetune.engine.Engines.noGrad()) {
                    plain = model.model().inferLogits(model.parameterStore(), x).toFloatArray();
                }
                double scale = 0;
                for (float v : plain) {
                    scale = Math.max(scale, Math.abs(v));
                }
                double d = TorchReference.maxAbsDiff(fast, plain);
                System.out.printf(Locale.ROOT, "folded inference %s %dx%d batch %d: max |diff| %.3g (scale %.3g)%n",
                        arch, shape[1], shape[1], shape[0], d, scale);
                assertTrue(d <= 1e-4 * Math.max(1, scale), arch + ": folded inference differs by " + d);
            }
            var reports = model.fastPathReports();
            String all = reports.stream().map(r -> r.toMap().toString()).toList().toString();
            if (arch.equals("resnet18")) {
                // 4x224x224 runs channels-last, 1x96x96 (little work) in NCHW: one folded prefix, each shape checked
                // in the layout it runs.
                assertEquals(1, reports.size(), all);
                assertTrue(reports.get(0).inUse().startsWith("folded, scripted, channels-last: stem, layer1, layer2,"
                        + " layer3, layer4 (NCHW throughout below 131072 input pixels"), all);
                var checks = reports.get(0).checks();
                assertTrue(checks.stream().anyMatch(c -> c.input().get(2) == 224
                        && c.path().equals("folded, scripted, channels-last: stem, layer1, layer2, layer3, layer4")), all);
                assertTrue(checks.stream().anyMatch(c -> c.input().get(2) == 96
                        && c.path().equals("folded, scripted, NCHW: stem, layer1, layer2, layer3, layer4")), all);
            } else {
                assertEquals(1, reports.size(), all);
            }
            // Each input shape checked once, by the prefix that runs it (the ResNet's scripted and op-by-op paths
            // each have a check entry).
            assertEquals(2, reports.stream().flatMap(r -> r.checks().stream()).map(c -> c.input()).distinct().count(),
                    all);
            assertTrue(reports.stream().flatMap(r -> r.checks().stream()).allMatch(c -> c.passed()), all);
            assertTrue(reports.stream().allMatch(r -> r.inUse().startsWith("folded")), all);
        }
    }
}
