package dev.finetune.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.nn.Block;
import ai.djl.nn.pooling.Pool;
import ai.djl.training.ParameterStore;
import ai.djl.util.PairList;
import java.util.ArrayList;
import java.util.List;

/**
 * torchvision's DenseNet-BC ({@code models/densenet.py}): {@code features} = {@code conv0, norm0, relu0, pool0}, then
 * {@code denseblock1}, {@code transition1} … {@code denseblock4}, {@code norm5}; ReLU, average pool and
 * {@code classifier}. Each dense layer sees the concatenation of every earlier output of its block.
 *
 * <p>Stages: {@code stem} (conv0 … pool0), {@code block1} ({@code denseblock1}), {@code block2}
 * ({@code transition1} + {@code denseblock2}), {@code block3}, {@code block4} (with {@code norm5}), {@code head}.
 */
public final class DenseNet extends Network {
    private static final List<String> STAGES = List.of("stem", "block1", "block2", "block3", "block4", "head");

    private final Sequential features;
    private final List<int[]> ranges = new ArrayList<>();

    DenseNet(DenseNetArch arch, int classes, int growth, int[] blocks, int initFeatures, int bnSize) {
        super(arch, classes);
        Sequential f = new Sequential();
        f.add("conv0", new Conv2d(3, initFeatures, 7, 2, 3).kaimingFanInInit());
        f.add("norm0", new BatchNorm2d(initFeatures));
        f.add("relu0", new Act(Act.Kind.RELU));
        f.add("pool0", new MaxPool2d(3, 2, 1));
        List<List<String>> m = new ArrayList<>();
        m.add(List.of("features.conv0", "features.norm0", "features.relu0", "features.pool0"));
        ranges.add(new int[] {0, 4});
        int n = initFeatures;
        for (int i = 0; i < blocks.length; i++) {
            List<String> stage = new ArrayList<>();
            int from = f.size();
            if (i > 0) {
                f.add("transition" + i, transition(n, n / 2));
                stage.add("features.transition" + i);
                n /= 2;
            }
            f.add("denseblock" + (i + 1), new DenseBlock(blocks[i], n, bnSize, growth));
            stage.add("features.denseblock" + (i + 1));
            n += blocks[i] * growth;
            if (i == blocks.length - 1) {
                f.add("norm5", new BatchNorm2d(n));
                stage.add("features.norm5");
            }
            m.add(List.copyOf(stage));
            ranges.add(new int[] {from, f.size()});
        }
        m.add(List.of("classifier"));
        features = child("features", f);
        child("classifier", new Linear(n, classes).zeroBias());
        declareStages(STAGES, m);
    }

    private static Sequential transition(int in, int out) {
        Sequential t = new Sequential();
        t.add("norm", new BatchNorm2d(in));
        t.add("relu", new Act(Act.Kind.RELU));
        t.add("conv", new Conv2d(in, out, 1, 1, 0).kaimingFanInInit());
        t.add("pool", new AvgPool2d(2, 2));
        return t;
    }


    @Override
    protected NDList runStage(int stage, ParameterStore ps, NDList x, boolean training) {
        if (stage < ranges.size()) {
            return features.forwardRange(ps, x, training, ranges.get(stage)[0], ranges.get(stage)[1]);
        }
        if (stage != ranges.size()) {
            throw new IllegalArgumentException("no stage " + stage);
        }
        NDArray f = x.singletonOrThrow();
        if (f.getShape().dimension() == 4) {
            f = Pool.globalAvgPool2d(Activation.relu(f)).reshape(f.getShape().get(0), -1);
        }
        return headForward(ps, f, training);
    }

    @Override
    protected Shape stageOutputShape(int stage, Shape in) {
        return stage < ranges.size() ? features.outputShape(ranges.get(stage)[0], ranges.get(stage)[1], in)
                : new Shape(in.get(0), numClasses());
    }

    @Override
    protected void initializeChildBlocks(NDManager manager, DataType dataType, Shape... inputShapes) {
        features.initialize(manager, dataType, inputShapes);
        Shape f = features.getOutputShapes(inputShapes)[0];
        head().initialize(manager, dataType, new Shape(f.get(0), f.get(1)));
    }

    /** {@code _DenseBlock}: layers {@code denselayer1} …, each fed the concatenation of all before it. */

    @Override
    protected GraphSink.Value traceStage(int stage, GraphSink g, GraphSink.Value x) {
        if (stage < ranges.size()) {
            return features.traceRange(g, "features.", x, ranges.get(stage)[0], ranges.get(stage)[1]);
        }
        return traceHead(g, Traces.globalPoolFlatten(g, Traces.act(g, Act.Kind.RELU, x)));
    }
    static final class DenseBlock extends TorchModule {
        private final int growth;

        DenseBlock(int layers, int in, int bnSize, int growth) {
            this.growth = growth;
            for (int i = 0; i < layers; i++) {
                child("denselayer" + (i + 1), new DenseLayer(in + i * growth, bnSize, growth));
            }
        }

        @Override
        protected NDList forwardInternal(
                ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> params) {
            List<NDArray> features = new ArrayList<>(List.of(inputs.singletonOrThrow()));
            for (Block layer : children.values()) {
                NDArray in = features.size() == 1 ? features.get(0) : NDArrays.concat(new NDList(features), 1);
                features.add(layer.forward(ps, new NDList(in), training).singletonOrThrow());
                if (features.size() > 2) {
                    StepScopes.free(in); // a concatenation made for this layer alone (in StepScopes.run/releasing)
                }
            }
            NDArray out = NDArrays.concat(new NDList(features), 1);
            for (int i = 1; i < features.size(); i++) {
                StepScopes.free(features.get(i)); // each layer's output, now copied into the block's output
            }
            return new NDList(out);
        }

        @Override
        public Shape[] getOutputShapes(Shape[] inputs) {
            Shape s = inputs[0];
            return new Shape[] {new Shape(s.get(0), s.get(1) + (long) children.size() * growth, s.get(2), s.get(3))};
        }

        @Override
        protected void initializeChildBlocks(NDManager manager, DataType dataType, Shape... inputShapes) {
            Shape s = inputShapes[0];
            int i = 0;
            for (Block layer : children.values()) {
                layer.initialize(manager, dataType, new Shape(s.get(0), s.get(1) + (long) i * growth, s.get(2),
                        s.get(3)));
                i++;
            }
        }
    
        @Override
        public GraphSink.Value trace(GraphSink g, String prefix, GraphSink.Value x) {
            List<String> features = new ArrayList<>(List.of(x.name()));
            long channels = x.shape().get(1);
            for (String name : children.keys()) {
                String in = features.size() == 1 ? features.get(0)
                        : g.op("Concat", java.util.Map.of("axis", 1L), features.toArray(String[]::new));
                Shape s = x.shape();
                GraphSink.Value layerIn = new GraphSink.Value(in, new Shape(s.get(0), channels, s.get(2), s.get(3)));
                features.add(traceChild(g, prefix, name, layerIn).name());
                channels += growth;
            }
            return output(g.op("Concat", java.util.Map.of("axis", 1L), features.toArray(String[]::new)), x);
        }
}

    /** {@code _DenseLayer}: BN, ReLU, 1×1 conv to {@code bnSize × growth}, BN, ReLU, 3×3 conv to {@code growth}. */
    static final class DenseLayer extends TorchModule {
        private final BatchNorm2d norm1;
        private final Conv2d conv1;
        private final BatchNorm2d norm2;
        private final Conv2d conv2;

        DenseLayer(int in, int bnSize, int growth) {
            norm1 = child("norm1", new BatchNorm2d(in));
            conv1 = child("conv1", new Conv2d(in, bnSize * growth, 1, 1, 0).kaimingFanInInit());
            norm2 = child("norm2", new BatchNorm2d(bnSize * growth));
            conv2 = child("conv2", new Conv2d(bnSize * growth, growth, 3, 1, 1).kaimingFanInInit());
        }

        @Override
        protected NDList forwardInternal(
                ParameterStore ps, NDList inputs, boolean training, PairList<String, Object> params) {
            // StepScopes.release frees each intermediate once its one consumer has run (in StepScopes.run/releasing).
            NDList y = norm1.forward(ps, inputs, training);
            y = StepScopes.release(y, new NDList(Activation.relu(y.singletonOrThrow())));
            y = StepScopes.release(y, conv1.forward(ps, y, training));
            y = StepScopes.release(y, norm2.forward(ps, y, training));
            y = StepScopes.release(y, new NDList(Activation.relu(y.singletonOrThrow())));
            return StepScopes.release(y, conv2.forward(ps, y, training));
        }

        @Override
        public Shape[] getOutputShapes(Shape[] inputs) {
            return conv2.getOutputShapes(conv1.getOutputShapes(inputs));
        }
    
        @Override
        public GraphSink.Value trace(GraphSink g, String prefix, GraphSink.Value x) {
            GraphSink.Value y = Traces.act(g, Act.Kind.RELU, traceChild(g, prefix, "norm1", x));
            y = Traces.act(g, Act.Kind.RELU, traceChild(g, prefix, "norm2", traceChild(g, prefix, "conv1", y)));
            return traceChild(g, prefix, "conv2", y);
        }
}
}
