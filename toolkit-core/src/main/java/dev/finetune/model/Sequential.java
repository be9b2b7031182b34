package dev.finetune.model;

import ai.djl.ndarray.NDList;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Block;
import ai.djl.training.ParameterStore;
import ai.djl.util.PairList;
import java.util.Map;

/** {@code nn.Sequential}: children named {@code 0, 1, …}, applied in order. */
public final class Sequential extends TorchModule {

    public Sequential(Block... blocks) {
        for (int i = 0; i < blocks.length; i++) {
            child(Integer.toString(i), blocks[i]);
        }
    }

    /** torchvision's shortcut projection: {@code Sequential(conv1x1(in, out, stride), BatchNorm2d(out))}. */
    static Sequential downsample(int in, int out, int stride) {
        return new Sequential(new Conv2d(in, out, 1, stride, 0), new BatchNorm2d(out));
    }

    /**
     * torchvision's {@code Conv2dNormActivation}: {@code Sequential(Conv2d(bias=False), BatchNorm2d, activation)},
     * padding {@code (kernel - 1) / 2}; {@code act} null for none (then only two children).
     */
    public static Sequential convNormAct(
            int in, int out, int kernel, int stride, int groups, Act.Kind act, float bnEps, float bnMomentum) {
        Conv2d conv = new Conv2d(in, out, kernel, stride, (kernel - 1) / 2, groups);
        BatchNorm2d bn = new BatchNorm2d(out, bnEps, bnMomentum);
        return act == null ? new Sequential(conv, bn) : new Sequential(conv, bn, new Act(act));
    }

    /** Appends a child under the next index. */
    public Sequential add(Block block) {
        child(Integer.toString(children.size()), block);
        return this;
    }

    /** Appends a child under its own name, as {@code nn.Sequential(OrderedDict(...))} does ({@code block1-0}). */
    public Sequential add(String name, Block block) {
        child(name, block);
        return this;
    }

    /** The output shape of children {@code [from, to)} for an input of shape {@code in}. */
    public Shape outputShape(int from, int to, Shape in) {
        Shape[] s = {in};
        for (int i = from; i < to; i++) {
            s = children.valueAt(i).getOutputShapes(s);
        }
        return s[0];
    }

    /** The i-th child's name ({@code 0}, or {@code a} in a named Sequential). */
    public String childName(int i) {
        return children.keyAt(i);
    }

    /** The i-th child, in order. */
    public Block get(int i) {
        return children.valueAt(i);
    }

    public int size() {
        return children.size();
    }

    @Override
    protected NDList forwardInternal(
            ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> params) {
        return forwardRange(ps, inputs, training, 0, children.size());
    }

    /**
     * Children {@code [from, to)} in order; where a {@link FoldedStages} prefix runs on this thread, a folded
     * conv+BN pair runs as its one convolution ({@link FoldScope}).
     */
    public NDList forwardRange(ParameterStore ps, NDList inputs, boolean training, int from, int to) {
        NDList x = inputs;
        Map<Integer, FoldedConvBn> folds = FoldScope.pairsOf(this); // one lookup per call, not per child
        for (int i = from; i < to; i++) {
            FoldedConvBn folded = folds != null && i + 1 < to ? folds.get(i) : null;
            NDList y;
            if (folded != null) {
                y = new NDList(folded.forward(x.singletonOrThrow()));
                i++;
            } else {
                y = children.valueAt(i).forward(ps, x, training);
            }
            // An intermediate has one consumer, the next child; the caller's input is the caller's to free.
            x = x == inputs ? y : StepScopes.release(x, y); // x is inputs only before the first child
        }
        return x;
    }

    @Override
    public Shape[] getOutputShapes(Shape[] inputs) {
        Shape[] s = inputs;
        for (Block b : children.values()) {
            s = b.getOutputShapes(s);
        }
        return s;
    }

    @Override
    public GraphSink.Value trace(GraphSink g, String prefix, GraphSink.Value x) {
        return traceRange(g, prefix, x, 0, children.size());
    }

    /** {@link #trace} of children {@code [from, to)}, as {@link #forwardRange} runs them. */
    public GraphSink.Value traceRange(GraphSink g, String prefix, GraphSink.Value x, int from, int to) {
        GraphSink.Value y = x;
        for (int i = from; i < to; i++) {
            y = traceChild(g, prefix, children.keyAt(i), y);
        }
        return y;
    }
}
