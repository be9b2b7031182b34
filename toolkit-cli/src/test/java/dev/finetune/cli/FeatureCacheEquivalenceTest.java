package dev.finetune.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.finetune.ErrorKind;
import dev.finetune.FinetuneException;
import dev.finetune.train.StopSignal;
import dev.finetune.train.TrainContext;
import dev.finetune.train.TrainingListener;
import dev.finetune.checkpoint.HostTensor;
import dev.finetune.config.ConfigLoader;
import dev.finetune.run.TrainJob;
import dev.finetune.run.TrainingCheckpoint;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Training on cached prefix features reaches the same weights as running the frozen prefix every step. */
class FeatureCacheEquivalenceTest {
    @TempDir
    Path tmp;

    /**
     * Cached and uncached linear probes reach the same head. And Ctrl-C or SIGTERM while the cache is being built
     * (minutes for a large set) ends the build between batches with the resumable checkpoint of the epoch's start, not
     * after the whole pass and a step; resumed, that run ends with the cached run's head.
     */
    @Test
    void cachedAndUncachedLinearProbesTrainToTheSameWeights() throws Exception {
        Path cfg = Cli.config(tmp, "cache", "{default: freeze, rules: [{train: \"fc.*\"}]}",
                "{epochs: 3, batch_size: 16, seed: 3}", Cli.smallData(tmp.resolve("data"), 16, 4));
        assertSameWeights(cfg, List.of());

        TrainingListener stopper = new TrainingListener() {
            @Override
            public void onEpochBegin(TrainContext ctx, int epoch) {
                StopSignal.request(ErrorKind.TERMINATED); // before the build, which checks between its batches
            }
        };
        FinetuneException e;
        try {
            e = assertThrows(FinetuneException.class,
                    () -> TrainJob.start(ConfigLoader.load(cfg, List.of()), tmp.resolve("cut"), List.of(stopper)));
        } finally {
            StopSignal.clear();
        }
        assertEquals(ErrorKind.TERMINATED, e.kind());
        assertTrue(e.getMessage().startsWith("terminated in epoch 1 after 0 batches"), e.getMessage());
        TrainingCheckpoint.Loaded mid = TrainingCheckpoint.read(tmp.resolve("cut/checkpoints/last.safetensors"));
        assertEquals(0, mid.meta().state().epochsCompleted());
        assertEquals(0, mid.meta().state().globalStep());
        TrainJob.Result resumed = TrainJob.resume(tmp.resolve("cut"), List.of(), List.of());
        assertEquals(3, resumed.state().epochsCompleted());
        assertTrue(resumed.summary().featureCacheUsed());
        assertSameHead("cut", "cached", 1e-6);
    }

    /** An image the loader skips leaves no row in the cache (whose rows are filled batch by batch), and shifts none. */
    @Test
    void aSkippedImageLeavesNoRowAndShiftsNone() throws Exception {
        Path data = Cli.smallData(tmp.resolve("data"), 16, 4);
        Files.write(data.resolve("train/bag/00000-corrupt.png"), new byte[] {(byte) 0x89, 'P', 'N', 'G', 1, 2, 3});
        Files.write(data.resolve("val/bag/00000-corrupt.png"), new byte[] {(byte) 0x89, 'P', 'N', 'G', 4, 5, 6});
        Path cfg = Cli.config(tmp, "cache", "{default: freeze, rules: [{train: \"fc.*\"}]}",
                "{epochs: 2, batch_size: 16, seed: 3}", data);
        TrainJob.Result cached = assertSameWeights(cfg, List.of("data.on_bad_image=skip"));
        assertEquals(2, cached.summary().skippedImages().size(), cached.summary().skippedImages().toString());
    }

    private TrainJob.Result assertSameWeights(Path cfg, List<String> sets) throws Exception {
        TrainJob.Result cached = TrainJob.start(ConfigLoader.load(cfg, sets), tmp.resolve("cached"), List.of());
        List<String> uncached = new java.util.ArrayList<>(sets);
        uncached.add("train.feature_cache=false");
        TrainJob.Result plain = TrainJob.start(ConfigLoader.load(cfg, uncached), tmp.resolve("plain"), List.of());
        assertTrue(cached.summary().featureCacheUsed());
        assertFalse(plain.summary().featureCacheUsed());
        assertSameHead("cached", "plain", 1e-5);
        assertEquals(cached.summary().valTop1(), plain.summary().valTop1(), 1e-9);
        return cached;
    }

    /** The new head of run folders {@code a} and {@code b} (their last checkpoints) within {@code tolerance}. */
    private void assertSameHead(String a, String b, double tolerance) throws Exception {
        Map<String, HostTensor> x = TrainingCheckpoint.read(tmp.resolve(a + "/checkpoints/last.safetensors"))
                .checkpoint().tensors();
        Map<String, HostTensor> y = TrainingCheckpoint.read(tmp.resolve(b + "/checkpoints/last.safetensors"))
                .checkpoint().tensors();
        for (String k : List.of("fc.weight", "fc.bias")) {
            float[] p = x.get(k).data();
            float[] q = y.get(k).data();
            double worst = 0;
            for (int i = 0; i < p.length; i++) {
                worst = Math.max(worst, Math.abs(p[i] - q[i]));
            }
            assertTrue(worst < tolerance, k + " of " + a + " and " + b + " differs by " + worst);
        }
    }
}
