package dev.finetune.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.ParameterStore;
import ai.djl.util.PairList;

/**
 * Parameter-free layout modules that torchvision keeps as children (so the indices of their siblings stay
 * torchvision's): {@code Permute} and {@code nn.Flatten(1)}.
 */
public final class Reshape extends TorchModule {
    private final int[] permutation;

    private Reshape(int[] permutation) {
        this.permutation = permutation;
    }

    /** torchvision's {@code ops.Permute(dims)}. */
    public static Reshape permute(int... dims) {
        return new Reshape(dims.clone());
    }

    /** {@code nn.Flatten(1)}. */
    public static Reshape flatten() {
        return new Reshape(null);
    }

    @Override
    protected NDList forwardInternal(
            ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> params) {
        NDArray x = inputs.singletonOrThrow();
        if (permutation == null) {
            return x.getShape().dimension() == 2 ? inputs : new NDList(x.reshape(x.getShape().get(0), -1));
        }
        return new NDList(x.transpose(permutation));
    }

    @Override
    public Shape[] getOutputShapes(Shape[] inputs) {
        Shape s = inputs[0];
        if (permutation == null) {
            return new Shape[] {new Shape(s.get(0), s.size() / s.get(0))};
        }
        long[] out = new long[permutation.length];
        for (int i = 0; i < out.length; i++) {
            out[i] = s.get(permutation[i]);
        }
        return new Shape[] {new Shape(out)};
    }

    @Override
    public GraphSink.Value trace(GraphSink g, String prefix, GraphSink.Value x) {
        if (permutation == null) {
            return x.rank() == 2 ? x : output(g.op("Flatten", java.util.Map.of("axis", 1L), x.name()), x);
        }
        long[] perm = java.util.Arrays.stream(permutation).asLongStream().toArray();
        return output(g.op("Transpose", java.util.Map.of("perm", perm), x.name()), x);
    }
}
