package dev.finetune.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.training.ParameterStore;
import ai.djl.util.PairList;

/**
 * A parameter-free activation module ({@code nn.ReLU}, {@code nn.ReLU6}, {@code nn.Hardswish} …), kept as a child so
 * that the indices of its siblings in an {@code nn.Sequential} stay torchvision's ({@code features.0.1} is the BN of
 * {@code Conv2dNormActivation}, {@code features.0.2} its activation).
 */
public final class Act extends TorchModule {
    /** The activations torchvision's CNNs use, with PyTorch's definitions. */
    public enum Kind {
        RELU, RELU6, HARDSWISH, HARDSIGMOID, SILU, SIGMOID, GELU;

        /** Applies this activation. */
        public NDArray apply(NDArray x) {
            return switch (this) {
                case RELU -> Activation.relu(x);
                // relu6(x) = min(max(x, 0), 6): torch's hardtanh(0, 6), a clamp.
                case RELU6 -> x.clip(0, 6);
                // hardswish(x) = x * relu6(x + 3) / 6, hardsigmoid(x) = relu6(x + 3) / 6 (torch.nn.functional).
                // Scalar operands libtorch owns: autograd saves the divisor (Scalars explains why not div(6)).
                case HARDSWISH -> x.mul(x.add(Scalars.of(x, 3)).clip(0, 6)).div(Scalars.of(x, 6));
                case HARDSIGMOID -> x.add(Scalars.of(x, 3)).clip(0, 6).div(Scalars.of(x, 6));
                case SILU -> x.mul(Activation.sigmoid(x));
                case SIGMOID -> Activation.sigmoid(x);
                // nn.GELU(): the exact erf form (libtorch's gelu, approximate="none").
                case GELU -> Activation.gelu(x);
            };
        }
    }

    private final Kind kind;

    public Act(Kind kind) {
        this.kind = kind;
    }

    public Kind kind() {
        return kind;
    }

    @Override
    protected NDList forwardInternal(
            ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> params) {
        return new NDList(kind.apply(inputs.singletonOrThrow()));
    }

    @Override
    public Shape[] getOutputShapes(Shape[] inputs) {
        return inputs;
    }

    @Override
    public String toString() {
        return kind.name();
    }

    @Override
    public GraphSink.Value trace(GraphSink g, String prefix, GraphSink.Value x) {
        return Traces.act(g, kind, x);
    }
}
