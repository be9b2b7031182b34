package dev.finetune.model;

import ai.djl.ndarray.types.Shape;
import dev.finetune.model.GraphSink.Value;
import java.util.Map;

/** Small pieces several modules' {@link TorchModule#trace} share. */
final class Traces {
    private Traces() {}

    /** {@code Conv}/{@code MaxPool}/{@code AveragePool} window attributes for square kernels. */
    static Map<String, Object> window(int kernel, int stride, int padding) {
        return Map.of("kernel_shape", new long[] {kernel, kernel}, "strides", new long[] {stride, stride},
                "pads", new long[] {padding, padding, padding, padding});
    }

    /** The eval-mode activation {@code kind} applied to {@code x} (same shape). */
    static Value act(GraphSink g, Act.Kind kind, Value x) {
        String in = x.name();
        String y = switch (kind) {
            case RELU -> g.op("Relu", in);
            case RELU6 -> g.op("Clip", in, g.constant(new float[] {0f}), g.constant(new float[] {6f}));
            case HARDSWISH -> g.op("HardSwish", in);
            // torch: relu6(x + 3) / 6 = clip(x / 6 + 0.5, 0, 1), ONNX's HardSigmoid with alpha 1/6, beta 0.5.
            case HARDSIGMOID -> g.op("HardSigmoid", Map.of("alpha", 1f / 6f, "beta", 0.5f), in);
            case SILU -> g.op("Mul", in, g.op("Sigmoid", in));
            case SIGMOID -> g.op("Sigmoid", in);
            // nn.GELU() is the exact erf form: x * 0.5 * (1 + erf(x / sqrt 2)); opset 17 has no Gelu node.
            case GELU -> g.op("Mul", in, g.op("Mul", g.constant(new float[] {0.5f}), g.op("Add",
                    g.constant(new float[] {1f}),
                    g.op("Erf", g.op("Div", in, g.constant(new float[] {(float) Math.sqrt(2.0)}))))));
        };
        return new Value(y, x.shape());
    }

    /** {@code adaptive_avg_pool2d(x, 1)} then {@code flatten(1)}: (N, C, H, W) to (N, C). */
    static Value globalPoolFlatten(GraphSink g, Value x) {
        if (x.rank() != 4) {
            return x;
        }
        String y = g.op("Flatten", Map.of("axis", 1L), g.op("GlobalAveragePool", x.name()));
        return new Value(y, new Shape(x.shape().get(0), x.shape().get(1)));
    }

    /**
     * {@code adaptive_avg_pool2d(x, (p, p))} then {@code flatten(1)} for any input size: ONNX has no adaptive pool, so
     * the pooling is a constant (H·W × p·p) matrix with PyTorch's windows (start ⌊i·in/out⌋, end ⌈(i+1)·in/out⌉),
     * applied by MatMul on the flattened spatial axis. The flattened order (channel-major) is torch.flatten's.
     */
    static Value adaptivePoolFlatten(GraphSink g, Value x, int p) {
        Shape s = x.shape();
        int c = (int) s.get(1);
        int h = (int) s.get(2);
        int w = (int) s.get(3);
        float[] m = new float[h * w * p * p];
        for (int i = 0; i < p; i++) {
            int h0 = Math.floorDiv(i * h, p);
            int h1 = -Math.floorDiv(-(i + 1) * h, p);
            for (int j = 0; j < p; j++) {
                int w0 = Math.floorDiv(j * w, p);
                int w1 = -Math.floorDiv(-(j + 1) * w, p);
                float v = 1f / ((h1 - h0) * (w1 - w0));
                for (int a = h0; a < h1; a++) {
                    for (int b = w0; b < w1; b++) {
                        m[(a * w + b) * p * p + i * p + j] = v;
                    }
                }
            }
        }
        String rows = g.op("Reshape", x.name(), g.constantLongs(0, c, (long) h * w));
        String pooled = g.op("MatMul", rows, g.constant(m, (long) h * w, (long) p * p));
        return new Value(g.op("Flatten", Map.of("axis", 1L), pooled), new Shape(s.get(0), (long) c * p * p));
    }
}
