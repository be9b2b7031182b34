package dev.finetune.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.norm.Dropout;
import ai.djl.training.ParameterStore;
import ai.djl.util.PairList;
import dev.finetune.engine.Engines;
import java.util.ArrayList;
import java.util.List;
import java.util.function.UnaryOperator;

/**
 * A torchvision CNN as the toolkit sees it, whatever the family: named {@link #stageNames() stages} in forward order
 * (the last one is always {@code head}, the classifier that {@code model.head} replaces), the stage each tensor
 * belongs to (for {@code frozen_stages}, the backward frontier, the feature cache and {@code inspect}), the
 * normalization layers (for BN modes), and a forward that can start and stop at any stage boundary.
 *
 * <p>A family subclass declares its modules under torchvision's attribute names (so {@link #namedTensors()} are the
 * state_dict keys), the module-name prefixes of each stage, and how one stage runs.
 */
public abstract class Network extends TorchModule {
    private final Architecture arch;
    private List<String> stageNames = List.of();
    private List<List<String>> stageModules = List.of();
    private Linear head;
    private float dropout;

    protected Network(Architecture arch, int classes) {
        if (classes < 1) {
            throw new IllegalArgumentException("numClasses must be >= 1, found " + classes);
        }
        this.arch = arch;
    }

    /**
     * Declares the stages (called once by the family's constructor, after its modules): their names in forward order,
     * the last being {@code head}, and the module-name prefixes of each ({@code conv1, bn1} for ResNet's stem). A
     * tensor belongs to the stage with a prefix that its name starts with (followed by a dot). The head module is
     * looked up at {@link Architecture#headName()}.
     */
    protected final void declareStages(List<String> names, List<List<String>> modules) {
        if (names.size() != modules.size() || !names.get(names.size() - 1).equals("head")) {
            throw new IllegalArgumentException("stages must pair names with modules and end with the head");
        }
        stageNames = List.copyOf(names);
        stageModules = List.copyOf(modules);
        head = (Linear) namedModules().get(arch.headName());
    }

    /** The architecture this network was built as. */
    public Architecture arch() {
        return arch;
    }

    /** The stages in forward order, ending with {@code head}. */
    public final List<String> stageNames() {
        return stageNames;
    }

    /** Runs one stage on its input; {@code stage} indexes {@link #stageNames()}. */
    protected abstract NDList runStage(int stage, ParameterStore ps, NDList x, boolean training);

    /** The classifier (the last Linear), the module at {@link Architecture#headName()}. */
    public final Linear head() {
        return head;
    }

    /** The output shape of stage {@code stage} for an input of shape {@code input}. */
    protected abstract Shape stageOutputShape(int stage, Shape input);

    /**
     * Elements per image of stage {@code stage}'s input for a square image of {@code imageSize} pixels (stage 0: the
     * image itself) — what the feature cache stores when the frozen prefix ends before {@code stage}.
     */
    public final long stageInputElements(int stage, int imageSize) {
        return stageInputShape(stage, new Shape(1, 3, imageSize, imageSize)).size();
    }

    /** The shape of stage {@code stage}'s input for network input {@code input} (stage 0: {@code input} itself). */
    public final Shape stageInputShape(int stage, Shape input) {
        Shape s = input;
        for (int i = 0; i < stage; i++) {
            s = stageOutputShape(i, s);
        }
        return s;
    }

    /** Allocates every parameter with torchvision's initial values (seed with {@code Engine.setRandomSeed}). */
    public Network initialize(NDManager manager) {
        initialize(manager, DataType.FLOAT32, new Shape(1, 3, 224, 224));
        return this;
    }

    /** The head's module name ({@code fc}, {@code classifier.1}). */
    public final String headName() {
        return arch().headName();
    }

    public final int numClasses() {
        return head().outFeatures();
    }

    /** Width of the features the head sees (512 for ResNet-18). */
    public final int featureDim() {
        return head().inFeatures();
    }

    /** Index into {@link #stageNames()}, -1 when unknown. */
    public final int stageIndex(String stageName) {
        return stageNames().indexOf(stageName);
    }

    /** The stage a tensor or module belongs to: {@code conv1.weight} → stem, {@code layer3.1.bn2.bias} → layer3. */
    public final String stageOf(String name) {
        return stageNames().get(stageIndexOf(name));
    }

    /** The stage index of a tensor or module name; a name outside every stage is an IllegalArgumentException. */
    public final int stageIndexOf(String name) {
        List<List<String>> modules = stageModules;
        for (int s = 0; s < modules.size(); s++) {
            for (String prefix : modules.get(s)) {
                if (name.equals(prefix) || name.startsWith(prefix + ".")) {
                    return s;
                }
            }
        }
        throw new IllegalArgumentException(name + " belongs to no stage of " + this);
    }

    /** Dropout before the head in training forwards (kept outside the head so its names stay torchvision's). */
    public final float dropout() {
        return dropout;
    }

    /** Sets the dropout applied to the head's input in training forwards. */
    public final void setDropout(float p) {
        if (p < 0 || p >= 1) {
            throw new IllegalArgumentException("head dropout must be in [0, 1), found " + p);
        }
        dropout = p;
    }

    /**
     * {@code model.fc = nn.Linear(featureDim, classes)}, whatever the head is called: a fresh head with PyTorch's
     * default initialization. The old head's arrays are released.
     */
    public final Linear replaceHead(NDManager manager, int classes, float dropoutP) {
        if (classes < 1) {
            throw new IllegalArgumentException("head classes must be >= 1, found " + classes);
        }
        setDropout(dropoutP);
        Linear old = head;
        Linear fresh = new Linear(old.inFeatures(), classes);
        fresh.initialize(manager, DataType.FLOAT32, new Shape(1, old.inFeatures()));
        String name = headName();
        int dot = name.lastIndexOf('.');
        TorchModule parent = dot < 0 ? this : (TorchModule) namedModules().get(name.substring(0, dot));
        parent.replaceChild(name.substring(dot + 1), fresh);
        head = fresh;
        old.getParameters().values().forEach(p -> p.close());
        return fresh;
    }

    /** Applies the head, with this network's dropout on its input when training. */
    protected final NDList headForward(ParameterStore ps, NDArray features, boolean training) {
        NDArray f = features;
        if (training && dropout > 0) {
            f = Dropout.dropout(f, dropout, true).singletonOrThrow();
        }
        return head.forward(ps, new NDList(f), training);
    }

    /** Every BatchNorm layer with its torchvision module name ({@code layer1.0.bn1}), in definition order. */
    public final List<NamedBatchNorm> batchNorms() {
        List<NamedBatchNorm> out = new ArrayList<>();
        namedModules().forEach((name, b) -> {
            if (b instanceof BatchNorm2d bn) {
                out.add(new NamedBatchNorm(name, bn));
            }
        });
        return out;
    }

    /** A BatchNorm layer and its module name. */
    public record NamedBatchNorm(String name, BatchNorm2d bn) {}

    /**
     * Runs stages {@code [from, to)}: for ResNet {@code forwardStages(ps, x, t, 0, 5)} gives layer4's map and
     * {@code forwardStages(ps, f, t, 5, 6)} the logits from it.
     *
     * <p>With no autograd recording, each stage's intermediates are freed as soon as the next stage's input exists
     * ({@link StepScopes}); the result is on the input's manager. Not while autograd records: DJL makes a scalar
     * operand ({@code x.div(6)} in hard-swish) a tensor over a Java buffer without copying, autograd saves it for the
     * backward, and freeing it with its stage left the backward reading reused memory (MobileNetV3's loss went NaN
     * when another thread allocated; AllocationNoiseTest).
     */
    public final NDList forwardStages(ParameterStore ps, NDList inputs, boolean training, int from, int to) {
        if (to - from < 1 || inputs.size() != 1 || Engines.isGradEnabled()) {
            NDList x = inputs;
            for (int s = from; s < to; s++) {
                x = runStage(s, ps, x, training);
            }
            return x;
        }
        List<UnaryOperator<NDArray>> steps = new ArrayList<>();
        for (int s = from; s < to; s++) {
            int stage = s;
            steps.add(in -> runStage(stage, ps, new NDList(in), training).singletonOrThrow());
        }
        return new NDList(StepScopes.run(inputs.singletonOrThrow(), steps));
    }

    @Override
    protected final NDList forwardInternal(
            ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> params) {
        return forwardStages(ps, inputs, training, 0, stageNames().size());
    }

    /**
     * Inference forward (normalization in eval mode, no autograd on this thread) that frees each stage's
     * intermediates as soon as the next stage's input exists ({@link StepScopes}); the logits are on {@code x}'s
     * manager. Same ops, same values as {@code forward(ps, x, false)}, at a fraction of the peak memory.
     */
    public final NDArray inferLogits(ParameterStore ps, NDArray x) {
        try (Engines.NoGrad g = Engines.noGrad()) {
            return forwardStages(ps, new NDList(x), false, 0, stageNames().size()).singletonOrThrow();
        }
    }

    @Override
    public Shape[] getOutputShapes(Shape[] inputs) {
        return new Shape[] {new Shape(inputs[0].get(0), numClasses())};
    }

    @Override
    public String toString() {
        return getClass().getSimpleName() + "(" + arch().configName() + ", classes=" + numClasses() + ")";
    }

    /**
     * Describes stage {@code stage}'s eval-mode forward to {@code g}, as {@link #runStage} runs it (the ONNX export).
     */
    protected abstract GraphSink.Value traceStage(int stage, GraphSink g, GraphSink.Value x);

    /** The whole network's eval-mode graph: every stage in order, from images (N, 3, H, W) to logits (N, classes). */
    @Override
    public final GraphSink.Value trace(GraphSink g, String prefix, GraphSink.Value x) {
        if (!prefix.isEmpty()) {
            throw new IllegalArgumentException("a network is traced from its root");
        }
        GraphSink.Value y = x;
        for (int s = 0; s < stageNames().size(); s++) {
            y = traceStage(s, g, y);
        }
        return y;
    }

    /** The head on pooled features (its dropout is the identity in eval mode). */
    protected final GraphSink.Value traceHead(GraphSink g, GraphSink.Value features) {
        return head.trace(g, headName() + ".", features);
    }
}
