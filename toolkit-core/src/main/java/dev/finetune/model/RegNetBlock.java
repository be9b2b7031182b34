package dev.finetune.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.training.ParameterStore;
import ai.djl.util.PairList;

/**
 * torchvision's RegNet {@code ResBottleneckBlock}: {@code proj} (1×1 conv + BN) where the shape changes, and
 * {@code f} = {@code a} (1×1), {@code b} (3×3 grouped, the stride), {@code se} (squeeze-and-excitation), {@code c}
 * (1×1, no activation); ReLU after the sum.
 */
public final class RegNetBlock extends TorchModule {
    private final Sequential proj;
    private final Sequential f;

    public RegNetBlock(int widthIn, int widthOut, int stride, int groupWidth, double seRatio) {
        proj = widthIn != widthOut || stride != 1
                ? child("proj", Sequential.convNormAct(widthIn, widthOut, 1, stride, 1, null, 1e-5f, 0.1f))
                : null;
        int wb = widthOut; // bottleneck multiplier 1.0 for every RegNetY torchvision builds
        int groups = wb / groupWidth;
        Sequential t = new Sequential();
        t.add("a", Sequential.convNormAct(widthIn, wb, 1, 1, 1, Act.Kind.RELU, 1e-5f, 0.1f));
        t.add("b", Sequential.convNormAct(wb, wb, 3, stride, groups, Act.Kind.RELU, 1e-5f, 0.1f));
        if (seRatio > 0) {
            t.add("se", new SqueezeExcitation(wb, (int) Math.round(seRatio * widthIn), Act.Kind.RELU,
                    Act.Kind.SIGMOID));
        }
        t.add("c", Sequential.convNormAct(wb, widthOut, 1, 1, 1, null, 1e-5f, 0.1f));
        f = child("f", t);
    }

    @Override
    protected NDList forwardInternal(
            ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> params) {
        NDArray y = f.forward(ps, inputs, training).singletonOrThrow();
        NDArray shortcut = proj == null ? inputs.singletonOrThrow() : proj.forward(ps, inputs, training)
                .singletonOrThrow();
        // In place into f's output, which feeds only this sum: f ends with a BN (or, folded, a conv with bias), and
        // neither saves its output for backward, so the sum reuses that buffer as BasicBlock's does. torchvision
        // writes shortcut + f(x); float addition commutes, so the values are the same bits.
        NDArray sum = y.addi(shortcut);
        if (proj != null) {
            StepScopes.free(shortcut);
        }
        return new NDList(StepScopes.release(sum, Activation.relu(sum)));
    }

    @Override
    public Shape[] getOutputShapes(Shape[] inputs) {
        return f.getOutputShapes(inputs);
    }

    @Override
    protected void initializeChildBlocks(NDManager manager, DataType dataType, Shape... inputShapes) {
        if (proj != null) {
            proj.initialize(manager, dataType, inputShapes);
        }
        f.initialize(manager, dataType, inputShapes);
    }

    @Override
    public GraphSink.Value trace(GraphSink g, String prefix, GraphSink.Value x) {
        GraphSink.Value y = traceChild(g, prefix, "f", x);
        GraphSink.Value shortcut = proj == null ? x : traceChild(g, prefix, "proj", x);
        return output(g.op("Relu", g.op("Add", shortcut.name(), y.name())), x);
    }
}
