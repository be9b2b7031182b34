package dev.finetune.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.finetune.checkpoint.Checkpoints;
import dev.finetune.model.Architectures;
import dev.finetune.model.BnMode;
import dev.finetune.model.ResNet;
import dev.finetune.optim.OptimizerSettings;
import dev.finetune.policy.FreezePolicy;
import dev.finetune.testing.TorchReference;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The fast-path check's reference run, the float32 step computed one stage at a time (so that one stage's saved maps
 * are alive at once), equals the one-graph step bit for bit: every gradient, every running statistic, the batch count
 * and the loss, on the pretrained Fashion-MNIST ResNet-18 with train-mode BatchNorm, from the images and from a later
 * stage, at two input sizes, over two accumulated micro-batches with a loss scale. On every host: the check's
 * fallback keeps this run's result as the step's (ChannelsLastTrainingTest and Bf16MixedTrainingTest check the whole
 * run then equals the float32 one). With the stem's backward in chunks (large images), conv1's and bn1's gradients
 * equal the one graph's to float32 rounding and everything else stays exact.
 */
class StagewiseStepTest {

    private static FineTuner fineTuner() {
        return FineTuner.builder().arch(Architectures.parse("resnet18"))
                .checkpoint(Checkpoints.read(TorchReference.repoRoot().resolve(
                        "models/resnet18-fmnist-a.safetensors").toString()))
                .policy(FreezePolicy.trainAll()).optimizer(OptimizerSettings.sgd(0.01, 0.9)).seed(0)
                .foldFrozenPrefix(false).channelsLastTraining(false).build();
    }

    /** Every gradient and every tensor (parameters, running statistics), the batch counts, the losses. */
    private record State(Map<String, float[]> grads, Map<String, float[]> tensors, List<Long> tracked,
            float[] losses) {}

    private static State run(boolean stagewise, float[] xs, Shape shape, long[] ys, int from) {
        return run(stagewise ? FineTuner.STEM_CHUNK_BYTES : -1, BnMode.TRAIN, xs, shape, ys, from);
    }

    /** The one-graph step with {@code stemChunkBytes} negative, else the reference run with that chunk size. */
    private static State run(long stemChunkBytes, BnMode stemMode, float[] xs, Shape shape, long[] ys, int from) {
        boolean stagewise = stemChunkBytes >= 0;
        try (FineTuner ft = fineTuner()) {
            ((ResNet) ft.model()).stemNorm().setMode(stemMode);
            NDArray x = ft.manager().create(xs, shape);
            NDArray y = ft.manager().create(ys).toType(DataType.INT64, false);
            float[] losses = new float[2];
            for (int i = 0; i < 2; i++) { // two micro-batches of one accumulated step
                losses[i] = stagewise ? ft.referenceStep(x, y, from, 0.5, stemChunkBytes) : ft.backward(x, y, from, 0.5);
            }
            Map<String, float[]> grads = new LinkedHashMap<>();
            Map<String, float[]> tensors = new LinkedHashMap<>();
            ft.model().namedTensors().forEach((n, p) -> {
                tensors.put(n, p.getArray().toFloatArray());
                NDArray g = ai.djl.pytorch.jni.JniUtils.getGradient((ai.djl.pytorch.engine.PtNDArray) p.getArray());
                if (g != null) { // null: no step reached it
                    grads.put(n, g.toFloatArray());
                    g.close();
                }
            });
            List<Long> tracked = ft.model().batchNorms().stream().map(b -> b.bn().numBatchesTracked()).toList();
            return new State(grads, tensors, tracked, losses);
        }
    }

    /** Images (standard normal) and labels for a batch of {@code shape}. */
    private static float[] images(Shape shape, long seed) {
        Random r = new Random(seed);
        float[] xs = new float[(int) shape.size()];
        for (int i = 0; i < xs.length; i++) {
            xs[i] = (float) r.nextGaussian();
        }
        return xs;
    }

    /**
     * With the stem's backward in chunks (a train-mode bn1, whose batch statistics couple the chunks, and a bn1 on its
     * running statistics, where each chunk is its own graph; chunks of 2 and an uneven 2+2+1): conv1's and bn1's
     * gradients equal the one graph's to float32 rounding, every other gradient, the running statistics, the batch
     * counts and the losses bit for bit.
     */
    @Test
    void theStemInChunksEqualsTheOneGraphStep() {
        for (BnMode mode : new BnMode[] {BnMode.TRAIN, BnMode.FROZEN_STATS}) {
            for (int batch : new int[] {6, 5}) {
                Shape shape = new Shape(batch, 3, 48, 48);
                long perImage = 64L * 24 * 24 * Float.BYTES; // conv1's output for one image
                float[] xs = images(shape, batch);
                long[] ys = new long[batch];
                for (int i = 0; i < batch; i++) {
                    ys[i] = (i * 3) % 5;
                }
                String what = mode + ", " + shape;
                try (FineTuner ft = fineTuner()) {
                    assertEquals(2, ((ResNet) ft.model()).stemChunk(shape, 2 * perImage), what + ": chunk");
                }
                State graph = run(-1, mode, xs, shape, ys, 0);
                State chunked = run(2 * perImage, mode, xs, shape, ys, 0);
                assertArrayEquals(graph.losses(), chunked.losses(), what + ": losses");
                assertEquals(graph.grads().keySet(), chunked.grads().keySet(), what + ": which tensors have gradients");
                for (var e : graph.grads().entrySet()) {
                    String n = e.getKey();
                    float[] g = e.getValue();
                    float[] c = chunked.grads().get(n);
                    if (n.startsWith("conv1.") || n.startsWith("bn1.")) {
                        double diff = 0;
                        double norm = 0;
                        for (int i = 0; i < g.length; i++) {
                            diff += ((double) c[i] - g[i]) * ((double) c[i] - g[i]);
                            norm += (double) g[i] * g[i];
                        }
                        assertTrue(norm > 0, what + ": the gradient reaches " + n);
                        assertTrue(Math.sqrt(diff) <= 1e-5 * Math.sqrt(norm),
                                what + ": gradient of " + n + " off by " + Math.sqrt(diff / norm) + " of its norm");
                    } else {
                        assertArrayEquals(g, c, what + ": gradient of " + n);
                    }
                }
                graph.tensors().forEach((n, t) -> assertArrayEquals(t, chunked.tensors().get(n), what + ": " + n));
                assertEquals(graph.tracked(), chunked.tracked(), what + ": num_batches_tracked");
            }
        }
    }

    @Test
    void theStageByStageReferenceEqualsTheOneGraphStepBitForBit() {
        // (batch, channels, side, first stage): images at 64 and 40 pixels, and layer2's output into layer3.
        int[][] cases = {{6, 3, 64, 0}, {4, 3, 40, 0}, {6, 128, 8, 3}};
        for (int[] c : cases) {
            Shape shape = new Shape(c[0], c[1], c[2], c[2]);
            Random r = new Random(c[2] + 31L * c[3]);
            float[] xs = new float[(int) shape.size()];
            for (int i = 0; i < xs.length; i++) {
                xs[i] = (float) (c[3] == 0 ? r.nextGaussian() : Math.max(0, r.nextGaussian()));
            }
            long[] ys = new long[c[0]];
            for (int i = 0; i < ys.length; i++) {
                ys[i] = i % 5;
            }
            State graph = run(false, xs, shape, ys, c[3]);
            State stagewise = run(true, xs, shape, ys, c[3]);
            String what = shape + " from stage " + c[3];
            assertArrayEquals(graph.losses(), stagewise.losses(), what + ": losses");
            assertEquals(graph.grads().keySet(), stagewise.grads().keySet(), what + ": which tensors have gradients");
            String first = c[3] == 0 ? "conv1.weight" : "layer3.0.conv1.weight";
            float[] g0 = stagewise.grads().get(first);
            assertTrue(g0 != null && java.util.stream.IntStream.range(0, g0.length).anyMatch(i -> g0[i] != 0),
                    what + ": the gradient reaches " + first);
            graph.grads().forEach((n, g) -> assertArrayEquals(g, stagewise.grads().get(n), what + ": gradient of " + n));
            graph.tensors().forEach((n, t) -> assertArrayEquals(t, stagewise.tensors().get(n), what + ": " + n));
            assertEquals(graph.tracked(), stagewise.tracked(), what + ": num_batches_tracked");
        }
    }
}
