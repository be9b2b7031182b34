package dev.finetune.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.nn.Block;
import ai.djl.nn.pooling.Pool;
import ai.djl.training.ParameterStore;
import java.util.List;

/**
 * torchvision's ResNet (and ResNeXt, Wide ResNet) as DJL blocks, parameter for parameter: the same modules, the same
 * names ({@code conv1}, {@code bn1}, {@code layer1}…{@code layer4}, {@code fc}), the same math (BN eps 1e-5, momentum
 * 0.1, max-pool 3/2/1, downsample only where the shape changes) and torchvision's initialization for training from
 * scratch.
 *
 * <p>Stages: {@code stem} (conv1+bn1+relu+maxpool), {@code layer1}…{@code layer4}, {@code head} (average pool and
 * {@code fc}).
 */
public final class ResNet extends Network {
    private static final List<String> STAGES = List.of("stem", "layer1", "layer2", "layer3", "layer4", "head");
    private static final List<List<String>> MODULES = List.of(
            List.of("conv1", "bn1"), List.of("layer1"), List.of("layer2"), List.of("layer3"), List.of("layer4"),
            List.of("fc"));

    private final Conv2d conv1;
    private final BatchNorm2d bn1;
    private final Sequential[] layers = new Sequential[4];

    private ResNet(ResNetArch arch, int numClasses) {
        super(arch, numClasses);
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
                    blocks[u] = new Bottleneck(inPlanes, planes, st, arch.groups(), arch.widthPerGroup());
                    inPlanes = planes * Bottleneck.EXPANSION;
                } else {
                    blocks[u] = new BasicBlock(inPlanes, planes, st);
                    inPlanes = planes * BasicBlock.EXPANSION;
                }
            }
            layers[s] = child("layer" + (s + 1), new Sequential(blocks));
        }
        child("fc", new Linear(arch.featureDim(), numClasses));
        declareStages(STAGES, MODULES);
    }

    /** A new, uninitialized network; call {@link #initialize(NDManager)} before use. */
    public static ResNet create(ResNetArch arch, int numClasses) {
        return new ResNet(arch, numClasses);
    }

    @Override
    public ResNet initialize(NDManager manager) {
        super.initialize(manager);
        return this;
    }

    @Override
    public ResNetArch arch() {
        return (ResNetArch) super.arch();
    }

    /** {@code layer1} … {@code layer4}. */
    public Sequential layer(int i) {
        return layers[i - 1];
    }

    @Override
    protected NDList runStage(int stage, ParameterStore ps, NDList x, boolean training) {
        switch (stage) {
            case 0: {
                NDList c = conv1.forward(ps, x, training);
                NDList y = StepScopes.release(c, bn1.forward(ps, c, training));
                // relu(maxpool(y)) instead of torchvision's maxpool(relu(y)): the same values, exactly (max and relu
                // are both monotone, so they commute), and the same gradients (the pool routes each window's gradient
                // to its maximum, which ReLU then passes or zeroes whichever comes first), but ReLU then runs on a
                // quarter of the values and allocates a quarter of the memory: our ReLU cannot be in place as
                // torchvision's is, and the stem's is the largest of the network. The folded path does the same.
                NDArray p = StepScopes.release(y.singletonOrThrow(),
                        Pool.maxPool2d(y.singletonOrThrow(), new Shape(3, 3), new Shape(2, 2), new Shape(1, 1), false));
                return new NDList(StepScopes.release(p, Activation.relu(p)));
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
                return headForward(ps, f, training);
            }
            default:
                throw new IllegalArgumentException("no stage " + stage);
        }
    }

    @Override
    protected Shape stageOutputShape(int stage, Shape in) {
        switch (stage) {
            case 0: {
                Shape c = conv1.getOutputShapes(new Shape[] {in})[0];
                return new Shape(c.get(0), c.get(1), (c.get(2) + 1) / 2, (c.get(3) + 1) / 2);
            }
            case 1:
            case 2:
            case 3:
            case 4:
                return layers[stage - 1].getOutputShapes(new Shape[] {in})[0];
            case 5:
                return new Shape(in.get(0), numClasses());
            default:
                throw new IllegalArgumentException("no stage " + stage);
        }
    }

    @Override
    protected void initializeChildBlocks(NDManager manager, DataType dataType, Shape... inputShapes) {
        Shape[] s = inputShapes;
        conv1.initialize(manager, dataType, s);
        s = conv1.getOutputShapes(s);
        bn1.initialize(manager, dataType, s);
        s = new Shape[] {stageOutputShape(0, inputShapes[0])};
        for (Sequential layer : layers) {
            layer.initialize(manager, dataType, s);
            s = layer.getOutputShapes(s);
        }
        head().initialize(manager, dataType, new Shape(s[0].get(0), arch().featureDim()));
    }

    @Override
    protected GraphSink.Value traceStage(int stage, GraphSink g, GraphSink.Value x) {
        if (stage == 0) {
            GraphSink.Value y = Traces.act(g, Act.Kind.RELU, traceChild(g, "", "bn1", traceChild(g, "", "conv1", x)));
            return new GraphSink.Value(g.op("MaxPool", Traces.window(3, 2, 1), y.name()), stageOutputShape(0, x.shape()));
        }
        if (stage <= 4) {
            return traceChild(g, "", "layer" + stage, x);
        }
        return traceHead(g, Traces.globalPoolFlatten(g, x));
    }
}
