package dev.finetune.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.nn.Block;
import ai.djl.nn.norm.Dropout;
import ai.djl.nn.pooling.Pool;
import ai.djl.training.ParameterStore;
import ai.djl.util.PairList;
import java.util.ArrayList;
import java.util.List;

/**
 * torchvision's ResNet as DJL blocks, parameter for parameter: the same modules, the same names ({@code conv1},
 * {@code bn1}, {@code layer1}…{@code layer4}, {@code fc}), the same math (BN eps 1e-5, momentum 0.1, max-pool
 * 3/2/1, downsample only where the shape changes) and torchvision's initialization for training from scratch.
 *
 * <p>The forward is split into named {@link #stageNames() stages} so that a frozen prefix can be run once and its
 * output reused (the feature cache) and so that the backward frontier can be reported per stage.
 */
public final class ResNet extends TorchModule {
    /** Stage names in forward order; the stem is {@code conv1}+{@code bn1}+relu+maxpool. */
    private static final List<String> STAGES = List.of("stem", "layer1", "layer2", "layer3", "layer4", "head");

    private final ResNetArch arch;
    private final Conv2d conv1;
    private final BatchNorm2d bn1;
    private final Sequential[] layers = new Sequential[4];
    private Linear fc;
    private float dropout;

    private ResNet(ResNetArch arch, int numClasses) {
        this.arch = arch;
        conv1 = child("conv1", new Conv2d(3, 64, 7, 2, 3));
        bn1 = child("bn1", new BatchNorm2d(64));
        int inPlanes = 64;
        int[] units = arch.layers();
        for (int s = 0; s < 4; s++) {
            int planes = 64 << s;
            int stride = s == 0 ? 1 : 2;
            Block[] blocks = new Block[units[s]];
            for (int u = 0; u < units[s]; u++) {
                int st = u == 0 ? stride : 1;
                if (arch.bottleneck()) {
                    blocks[u] = new Bottleneck(inPlanes, planes, st);
                    inPlanes = planes * Bottleneck.EXPANSION;
                } else {
                    blocks[u] = new BasicBlock(inPlanes, planes, st);
                    inPlanes = planes * BasicBlock.EXPANSION;
                }
            }
            layers[s] = child("layer" + (s + 1), new Sequential(blocks));
        }
        fc = child("fc", new Linear(arch.featureDim(), numClasses));
    }

    /** A new, uninitialized network; call {@link #initialize(NDManager)} before use. */
    public static ResNet create(ResNetArch arch, int numClasses) {
        if (numClasses < 1) {
            throw new IllegalArgumentException("numClasses must be >= 1, found " + numClasses);
        }
        return new ResNet(arch, numClasses);
    }

    /** Allocates every parameter with torchvision's initial values (seed with {@code Engine.setRandomSeed}). */
    public ResNet initialize(NDManager manager) {
        initialize(manager, DataType.FLOAT32, new Shape(1, 3, 224, 224));
        return this;
    }

    public ResNetArch arch() {
        return arch;
    }

    public int numClasses() {
        return fc.outFeatures();
    }

    public Linear fc() {
        return fc;
    }

    /** Dropout before {@code fc} in training forwards (kept outside {@code fc} so its names stay torchvision's). */
    public float dropout() {
        return dropout;
    }

    /**
     * {@code model.fc = nn.Linear(featureDim, classes)}: a fresh head with PyTorch's default initialization. The old
     * head's arrays are released.
     */
    public Linear replaceHead(NDManager manager, int classes, float dropoutP) {
        if (classes < 1) {
            throw new IllegalArgumentException("head classes must be >= 1, found " + classes);
        }
        if (dropoutP < 0 || dropoutP >= 1) {
            throw new IllegalArgumentException("head dropout must be in [0, 1), found " + dropoutP);
        }
        Linear old = fc;
        fc = replaceChild("fc", new Linear(arch.featureDim(), classes));
        fc.initialize(manager, DataType.FLOAT32, new Shape(1, arch.featureDim()));
        old.getParameters().values().forEach(p -> p.close());
        dropout = dropoutP;
        return fc;
    }

    /** Sets the dropout applied before {@code fc} in training forwards. */
    public void setDropout(float p) {
        if (p < 0 || p >= 1) {
            throw new IllegalArgumentException("head dropout must be in [0, 1), found " + p);
        }
        dropout = p;
    }

    /** Every BatchNorm layer with its torchvision module name ({@code layer1.0.bn1}). */
    public List<NamedBatchNorm> batchNorms() {
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

    /** The forward stages, in order: {@code stem, layer1, layer2, layer3, layer4, head}. */
    public static List<String> stageNames() {
        return STAGES;
    }

    /** The stage a parameter name belongs to: {@code conv1.weight} → stem, {@code layer3.1.bn2.bias} → layer3. */
    public static String stageOf(String tensorName) {
        if (tensorName.startsWith("conv1.") || tensorName.startsWith("bn1.")) {
            return "stem";
        }
        if (tensorName.startsWith("fc.")) {
            return "head";
        }
        int dot = tensorName.indexOf('.');
        return dot < 0 ? tensorName : tensorName.substring(0, dot);
    }

    @Override
    protected NDList forwardInternal(
            ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> params) {
        return forwardStages(ps, inputs, training, 0, STAGES.size());
    }

    /**
     * Inference forward (BN in eval mode, no autograd on this thread) that frees each stage's intermediates as soon
     * as the next stage's input exists ({@link StepScopes}); the logits are on {@code x}'s manager. Same ops, same
     * values as {@code forward(ps, x, false)}, at a fraction of the peak memory.
     */
    public NDArray inferLogits(ParameterStore ps, NDArray x) {
        java.util.List<java.util.function.UnaryOperator<NDArray>> steps = new ArrayList<>();
        for (int s = 0; s < STAGES.size(); s++) {
            int stage = s;
            steps.add(in -> runStage(stage, ps, new NDList(in), false).singletonOrThrow());
        }
        try (dev.finetune.engine.Engines.NoGrad g = dev.finetune.engine.Engines.noGrad()) {
            return StepScopes.run(x, steps);
        }
    }

    /**
     * Runs stages {@code [from, to)} (indices into {@link #stageNames()}): {@code forwardStages(ps, x, t, 0, 5)} gives
     * the pooled features, {@code forwardStages(ps, f, t, 5, 6)} the logits from them.
     */
    public NDList forwardStages(ParameterStore ps, NDList inputs, boolean training, int from, int to) {
        NDList x = inputs;
        for (int s = from; s < to; s++) {
            x = runStage(s, ps, x, training);
        }
        return x;
    }

    private NDList runStage(int stage, ParameterStore ps, NDList x, boolean training) {
        switch (stage) {
            case 0: {
                NDList y = bn1.forward(ps, conv1.forward(ps, x, training), training);
                NDArray r = Activation.relu(y.singletonOrThrow());
                return new NDList(Pool.maxPool2d(r, new Shape(3, 3), new Shape(2, 2), new Shape(1, 1), false));
            }
            case 1:
            case 2:
            case 3:
            case 4:
                return layers[stage - 1].forward(ps, x, training);
            case 5: {
                NDArray f = x.singletonOrThrow();
                if (f.getShape().dimension() == 4) {
                    // adaptive_avg_pool2d((1, 1)) + flatten, as torchvision's avgpool/torch.flatten.
                    f = Pool.globalAvgPool2d(f).reshape(f.getShape().get(0), -1);
                }
                if (training && dropout > 0) {
                    f = Dropout.dropout(f, dropout, true).singletonOrThrow();
                }
                return fc.forward(ps, new NDList(f), training);
            }
            default:
                throw new IllegalArgumentException("no stage " + stage);
        }
    }

    @Override
    public Shape[] getOutputShapes(Shape[] inputs) {
        return new Shape[] {new Shape(inputs[0].get(0), fc.outFeatures())};
    }

    @Override
    protected void initializeChildBlocks(NDManager manager, DataType dataType, Shape... inputShapes) {
        Shape[] s = inputShapes;
        conv1.initialize(manager, dataType, s);
        s = conv1.getOutputShapes(s);
        bn1.initialize(manager, dataType, s);
        Shape x = s[0];
        s = new Shape[] {new Shape(x.get(0), x.get(1), (x.get(2) + 1) / 2, (x.get(3) + 1) / 2)};
        for (Sequential layer : layers) {
            layer.initialize(manager, dataType, s);
            s = layer.getOutputShapes(s);
        }
        fc.initialize(manager, dataType, new Shape(s[0].get(0), arch.featureDim()));
    }

    @Override
    public String toString() {
        return "ResNet(" + arch.configName() + ", classes=" + numClasses() + ")";
    }
}
