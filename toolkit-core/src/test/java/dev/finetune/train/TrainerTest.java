package dev.finetune.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.finetune.ErrorKind;
import dev.finetune.FinetuneException;
import dev.finetune.checkpoint.Checkpoint;
import dev.finetune.checkpoint.CheckpointFormat;
import dev.finetune.checkpoint.Checkpoints;
import dev.finetune.checkpoint.HostTensor;
import dev.finetune.data.TransformSpec;
import dev.finetune.metrics.MetricChoice;
import dev.finetune.optim.OptimizerSettings;
import dev.finetune.optim.ParamSlot;
import dev.finetune.policy.FreezePolicy;
import dev.finetune.testing.TorchReference;
import dev.finetune.weights.StateDicts;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The training loop driven by a program, with no YAML: the order listeners are called in, gradual unfreezing as a
 * listener, early stopping, and a stop-and-resume that ends where an uninterrupted run ends.
 */
class TrainerTest {
    @TempDir
    static Path tmp;

    private static TrainingData data;

    @BeforeAll
    static void smallImageFolder() throws Exception {
        Path from = TorchReference.repoRoot().resolve("data/fashion-mnist-b");
        for (String split : List.of("train", "val")) {
            try (var classes = Files.list(from.resolve(split))) {
                for (Path c : classes.sorted().toList()) {
                    Path dest = Files.createDirectories(tmp.resolve("data").resolve(split).resolve(c.getFileName()));
                    try (var files = Files.list(c)) {
                        for (Path f : files.sorted().limit(split.equals("train") ? 8 : 2).toList()) {
                            Files.copy(f, dest.resolve(f.getFileName()));
                        }
                    }
                }
            }
        }
        TransformSpec t = new TransformSpec(32, 32, false, false, TransformSpec.defaults().mean(),
                TransformSpec.defaults().std());
        data = TrainingData.imageFolder(tmp.resolve("data"), t, 0, 0);
    }

    private static FineTuner probe(Checkpoint from) {
        return FineTuner.builder()
                .checkpoint(from != null ? from
                        : Checkpoints.read(TorchReference.repoRoot().resolve("models/resnet18-fmnist-a.safetensors")))
                .headClasses(5)
                .policy(FreezePolicy.linearProbe())
                .optimizer(OptimizerSettings.sgd(0.01, 0.9))
                .seed(0)
                .build();
    }

    @Test
    void listenersSeeEveryEventInOrder() {
        List<String> events = new ArrayList<>();
        try (FineTuner ft = probe(null)) {
            TrainState end = Trainer.builder(ft, data).epochs(2).batchSize(16).maxStepsPerEpoch(2)
                    .listener(new TrainingListener() {
                        @Override
                        public void onTrainStart(TrainContext ctx) {
                            events.add("start");
                        }

                        @Override
                        public void onEpochBegin(TrainContext ctx, int epoch) {
                            events.add("begin " + epoch);
                        }

                        @Override
                        public void onEpochStart(TrainContext ctx, int epoch, int batches) {
                            events.add("epoch " + epoch + " of " + batches + " batches");
                        }

                        @Override
                        public void onStep(TrainContext ctx, int batch, int images, float loss, double lr) {
                            events.add("step " + batch + " (" + images + " images, lr " + lr + ")");
                        }

                        @Override
                        public void onEpochEnd(TrainContext ctx, EpochSummary s) {
                            events.add("end " + s.epoch() + (s.featureCache() ? " cached" : ""));
                        }

                        @Override
                        public void onTrainEnd(TrainContext ctx) {
                            events.add("done");
                        }
                    })
                    .build().fit();
            assertEquals(List.of("start", "begin 1", "epoch 1 of 2 batches", "step 1 (16 images, lr 0.01)",
                    "step 2 (16 images, lr 0.01)", "end 1 cached", "begin 2", "epoch 2 of 2 batches",
                    "step 1 (16 images, lr 0.01)", "step 2 (16 images, lr 0.01)", "end 2 cached", "done"), events);
            assertEquals(2, end.epochsCompleted());
            assertEquals(4, end.globalStep());
        }
    }

    @Test
    void gradualUnfreezingIsAListenerThatAddsItsGroupAtItsEpoch() {
        List<String> seen = new ArrayList<>();
        try (FineTuner ft = probe(null)) {
            GradualUnfreezing unfreezing = new GradualUnfreezing(List.of(new GradualUnfreezing.Step(2,
                    FreezePolicy.Rule.train("unfreeze layer4", "layer4"), 0.1)));
            TrainState end = Trainer.builder(ft, data).epochs(3).batchSize(16).maxStepsPerEpoch(1)
                    .schedule(LrSchedule.Spec.cosine(0, 0))
                    .listener(unfreezing)
                    .listener(new TrainingListener() {
                        @Override
                        public void onEpochEnd(TrainContext ctx, EpochSummary s) {
                            ParamSlot l4 = ctx.fineTuner().optimizer().slots().stream()
                                    .filter(x -> x.name().equals("layer4.0.conv1.weight")).findFirst().orElse(null);
                            seen.add(s.epoch() + ": " + (l4 == null ? "frozen" : l4.group() + " x" + l4.lrMult())
                                    + ", unfreeze steps " + ctx.state().unfreezeApplied());
                        }
                    })
                    .build().fit();
            assertEquals(List.of("1: frozen, unfreeze steps 0", "2: unfreeze layer4 x0.1, unfreeze steps 1",
                    "3: unfreeze layer4 x0.1, unfreeze steps 1"), seen);
            assertEquals(1, end.unfreezeApplied());
        }
    }

    @Test
    void earlyStoppingEndsTheLoop() {
        try (FineTuner ft = probe(null)) {
            // Nothing improves by 1e9: the second epoch is the last.
            TrainState end = Trainer.builder(ft, data).epochs(5).batchSize(16).maxStepsPerEpoch(1)
                    .listener(new EarlyStoppingListener(MetricChoice.parse("train_loss"), 1, 1e9))
                    .build().fit();
            assertEquals(2, end.epochsCompleted());
        }
    }

    @Test
    void aStoppedRunResumedFromItsStateEndsWhereAnUninterruptedOneEnds() {
        stopAndResumeEndsWhereAnUninterruptedRunEnds(null);
    }

    /** The same with Mixup/CutMix on: every batch's draw comes from (seed, epoch, batch), so resume stays exact. */
    @Test
    void aStoppedRunWithMixupResumesExactly() {
        stopAndResumeEndsWhereAnUninterruptedRunEnds(new Mixup(0.8, 1.0, 1.0, 0.5));
    }

    /** With a weight EMA: its averages travel in the training state and end where the uninterrupted run's end. */
    @Test
    void aStoppedRunWithAWeightEmaResumesExactly() {
        Map<String, HostTensor> straight = new LinkedHashMap<>();
        try (FineTuner ft = probe(null)) {
            Trainer.builder(ft, data).epochs(2).batchSize(8).maxStepsPerEpoch(3).featureCache(false).ema(0.9)
                    .listener(emaAtEnd(straight)).build().fit();
        }
        TrainState[] saved = new TrainState[1];
        Map<String, HostTensor> weights = new LinkedHashMap<>();
        Map<String, HostTensor> state = new LinkedHashMap<>();
        try (FineTuner ft = probe(null)) {
            assertThrows(FinetuneException.class, () -> Trainer.builder(ft, data).epochs(2).batchSize(8)
                    .maxStepsPerEpoch(3).featureCache(false).ema(0.9)
                    .listener(stopInEpoch2(saved, weights, state))
                    .build().fit());
            StopSignal.clear();
        }
        Map<String, HostTensor> resumed = new LinkedHashMap<>();
        Checkpoint from = new Checkpoint(tmp.resolve("memory-ema"), CheckpointFormat.SAFETENSORS,
                new LinkedHashMap<>(weights), Map.of());
        try (FineTuner ft = FineTuner.builder().checkpoint(from).policy(FreezePolicy.linearProbe())
                .optimizer(OptimizerSettings.sgd(0.01, 0.9)).seed(0).build()) {
            Trainer.builder(ft, data).epochs(2).batchSize(8).maxStepsPerEpoch(3).featureCache(false).ema(0.9)
                    .resume(saved[0], state).listener(emaAtEnd(resumed)).build().fit();
        }
        assertEquals(straight.keySet(), resumed.keySet());
        assertEquals(java.util.Set.of("ema.fc.weight", "ema.fc.bias"), straight.keySet(), "only what trains");
        for (String k : straight.keySet()) {
            float[] a = straight.get(k).data();
            float[] b = resumed.get(k).data();
            double worst = 0;
            for (int i = 0; i < a.length; i++) {
                worst = Math.max(worst, Math.abs(a[i] - b[i]));
            }
            assertTrue(worst < 1e-6, k + " differs by " + worst);
        }
    }

    /**
     * Stops after the first batch of epoch 2 and keeps what a checkpoint keeps: the state, the weights, and the
     * optimizer's state with the weight EMA's averages beside it (as CheckpointListener stores them).
     */
    private static TrainingListener stopInEpoch2(TrainState[] saved, Map<String, HostTensor> weights,
            Map<String, HostTensor> state) {
        return new TrainingListener() {
            @Override
            public void onStep(TrainContext ctx, int batch, int images, float loss, double lr) {
                if (ctx.state().epochsCompleted() == 1 && batch == 1) {
                    StopSignal.request(ErrorKind.INTERRUPTED);
                }
            }

            @Override
            public String onInterrupt(TrainContext ctx, TrainState resumable) {
                saved[0] = resumable;
                weights.putAll(StateDicts.export(ctx.fineTuner().model()));
                state.putAll(ctx.fineTuner().optimizer().exportState());
                if (ctx.ema() != null) {
                    state.putAll(ctx.ema().exportState());
                }
                return "saved in memory";
            }
        };
    }

    private static TrainingListener emaAtEnd(Map<String, HostTensor> into) {
        return new TrainingListener() {
            @Override
            public void onTrainEnd(TrainContext ctx) {
                into.putAll(ctx.ema().exportState());
            }
        };
    }

    private void stopAndResumeEndsWhereAnUninterruptedRunEnds(Mixup mixup) {
        Map<String, HostTensor> uninterrupted;
        try (FineTuner ft = probe(null)) {
            Trainer.builder(ft, data).epochs(2).batchSize(8).maxStepsPerEpoch(3).featureCache(false).mixup(mixup).build()
                    .fit();
            uninterrupted = StateDicts.export(ft.model());
        }
        // Stop after the 4th step (epoch 2, batch 1), keeping what a checkpoint would keep.
        TrainState[] saved = new TrainState[1];
        Map<String, HostTensor> weights = new LinkedHashMap<>();
        Map<String, HostTensor> optimizer = new LinkedHashMap<>();
        try (FineTuner ft = probe(null)) {
            FinetuneException stop = assertThrows(FinetuneException.class, () -> Trainer.builder(ft, data).epochs(2)
                    .batchSize(8).maxStepsPerEpoch(3).featureCache(false).mixup(mixup)
                    .listener(stopInEpoch2(saved, weights, optimizer))
                    .build().fit());
            StopSignal.clear();
            assertTrue(stop.getMessage().startsWith("interrupted in epoch 2 after 1 batches; saved in memory"),
                    stop.getMessage());
        }
        assertNotNull(saved[0]);
        assertEquals(4, saved[0].globalStep());
        Checkpoint resumedFrom = new Checkpoint(tmp.resolve(mixup == null ? "memory" : "memory-mixup"), CheckpointFormat.SAFETENSORS,
                new LinkedHashMap<>(weights), Map.of());
        try (FineTuner ft = FineTuner.builder().checkpoint(resumedFrom).policy(FreezePolicy.linearProbe())
                .optimizer(OptimizerSettings.sgd(0.01, 0.9)).seed(0).build()) {
            TrainState end = Trainer.builder(ft, data).epochs(2).batchSize(8).maxStepsPerEpoch(3).featureCache(false)
                    .mixup(mixup).resume(saved[0], optimizer).build().fit();
            assertEquals(6, end.globalStep());
            Map<String, HostTensor> resumed = StateDicts.export(ft.model());
            for (String k : List.of("fc.weight", "fc.bias")) {
                float[] a = uninterrupted.get(k).data();
                float[] b = resumed.get(k).data();
                double worst = 0;
                for (int i = 0; i < a.length; i++) {
                    worst = Math.max(worst, Math.abs(a[i] - b[i]));
                }
                assertTrue(worst < 1e-6, k + " differs by " + worst);
            }
        }
    }

    /**
     * EfficientNet-B0 trained in full (dropout 0.2 before the head, stochastic depth up to 0.2 in the blocks, BN
     * statistics moving): a run stopped mid-epoch and resumed from its state ends where the uninterrupted one ends —
     * every draw comes from libtorch's generator reseeded per step.
     */
    @Test
    void stochasticDepthAndDropoutResumeExactly() {
        java.util.function.Supplier<FineTuner> build = () -> FineTuner.builder()
                .arch(dev.finetune.model.EfficientNetArch.EFFICIENTNET_B0).headClasses(5)
                .policy(FreezePolicy.trainAll()).optimizer(OptimizerSettings.sgd(0.01, 0.9)).seed(0).build();
        Map<String, HostTensor> uninterrupted;
        try (FineTuner ft = build.get()) {
            Trainer.builder(ft, data).epochs(2).batchSize(8).maxStepsPerEpoch(3).featureCache(false).build().fit();
            uninterrupted = StateDicts.export(ft.model());
        }
        Map<String, HostTensor> withoutDrops;
        try (FineTuner ft = build.get()) {
            ft.model().setDropout(0);
            ft.model().namedModules().values().forEach(b -> {
                if (b instanceof dev.finetune.model.InvertedResidual r) {
                    r.stochasticDepth().setRate(0);
                }
            });
            Trainer.builder(ft, data).epochs(2).batchSize(8).maxStepsPerEpoch(3).featureCache(false).build().fit();
            withoutDrops = StateDicts.export(ft.model());
        }
        assertTrue(maxDiff(uninterrupted, withoutDrops) > 1e-4, "dropout and stochastic depth change the run");
        TrainState[] saved = new TrainState[1];
        Map<String, HostTensor> weights = new LinkedHashMap<>();
        Map<String, HostTensor> optimizer = new LinkedHashMap<>();
        try (FineTuner ft = build.get()) {
            assertThrows(FinetuneException.class, () -> Trainer.builder(ft, data).epochs(2).batchSize(8)
                    .maxStepsPerEpoch(3).featureCache(false)
                    .listener(stopInEpoch2(saved, weights, optimizer))
                    .build().fit());
            StopSignal.clear();
        }
        Checkpoint resumedFrom = new Checkpoint(tmp.resolve("memory-b0"), CheckpointFormat.SAFETENSORS,
                new LinkedHashMap<>(weights), Map.of());
        try (FineTuner ft = FineTuner.builder().arch(dev.finetune.model.EfficientNetArch.EFFICIENTNET_B0)
                .checkpoint(resumedFrom).policy(FreezePolicy.trainAll()).optimizer(OptimizerSettings.sgd(0.01, 0.9))
                .seed(0).build()) {
            Trainer.builder(ft, data).epochs(2).batchSize(8).maxStepsPerEpoch(3).featureCache(false)
                    .resume(saved[0], optimizer).build().fit();
            double worst = maxDiff(uninterrupted, StateDicts.export(ft.model()));
            System.out.printf("resume: efficientnet_b0 with dropout and stochastic depth, worst |diff| %.3g%n", worst);
            assertTrue(worst < 1e-6, "the resumed run differs from the uninterrupted one by " + worst);
        }
    }

    /**
     * Gradient accumulation on a frozen-BN model: batches of 8 accumulated in pairs equal batches of 16 (the same
     * samples in the same order, three optimizer steps either way), with and without the feature cache.
     */
    @Test
    void accumulatedBatchesEqualTheLargeBatch() {
        for (boolean cache : new boolean[] {true, false}) {
            Map<String, HostTensor> large;
            try (FineTuner ft = probe(null)) {
                Trainer.builder(ft, data).epochs(1).batchSize(16).featureCache(cache).build().fit();
                large = StateDicts.export(ft.model());
            }
            Map<String, HostTensor> accumulated;
            try (FineTuner ft = probe(null)) {
                Trainer.builder(ft, data).epochs(1).batchSize(8).accumulateSteps(2).featureCache(cache).build().fit();
                accumulated = StateDicts.export(ft.model());
            }
            double worst = maxDiff(large, accumulated);
            System.out.printf("accumulation (cache %s): 2 x 8 vs 16, worst |diff| %.3g%n", cache, worst);
            assertTrue(worst < 1e-6, "accumulated batches differ from the large batch by " + worst);
            Map<String, HostTensor> unaccumulated;
            try (FineTuner ft = probe(null)) {
                Trainer.builder(ft, data).epochs(1).batchSize(8).featureCache(cache).build().fit();
                unaccumulated = StateDicts.export(ft.model());
            }
            assertTrue(maxDiff(large, unaccumulated) > 1e-5, "five small steps are not three large ones");
        }
    }

    private static double maxDiff(Map<String, HostTensor> a, Map<String, HostTensor> b) {
        double worst = 0;
        for (String k : a.keySet()) {
            float[] x = a.get(k).data();
            float[] y = b.get(k).data();
            for (int i = 0; i < x.length; i++) {
                worst = Math.max(worst, Math.abs(x[i] - y[i]));
            }
        }
        return worst;
    }
}
