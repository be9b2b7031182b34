package dev.finetune.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Block;
import ai.djl.nn.pooling.Pool;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.jni.JniUtils;
import ai.djl.training.ParameterStore;
import java.util.ArrayList;
import java.util.List;

/**
 * torchvision's {@code features} / {@code avgpool} / {@code classifier} layout (MobileNetV2/V3, VGG, EfficientNet):
 * {@code features} an {@code nn.Sequential} whose children are grouped into stages by the family, an adaptive average
 * pool, and {@code classifier} an {@code nn.Sequential} ending in the Linear that a new head replaces.
 *
 * <p>The dropout right before that Linear ({@code classifier.0} in MobileNetV2, {@code classifier.2} in V3,
 * {@code classifier.5} in VGG) is this network's {@link #dropout()}, so {@code model.head.dropout} sets it; other
 * dropouts inside the classifier keep torchvision's rate.
 */
public final class FeaturesNetwork extends Network {
    private final Sequential features;
    private final Sequential classifier;
    private final int headIndex;
    private final int poolSize;
    /** Per feature stage, the {@code features} children it runs: [from, to). */
    private final List<int[]> ranges;

    /**
     * @param arch the architecture
     * @param features torchvision's {@code features}
     * @param stageNames the feature stages' names (the head is added)
     * @param stageEnds per feature stage, the index after its last {@code features} child
     * @param poolSize the adaptive average pool's output side (1, or 7 for VGG)
     * @param classifier torchvision's {@code classifier}; its last child is the head Linear
     * @param dropout torchvision's rate for the dropout right before the head
     */
    FeaturesNetwork(Architecture arch, Sequential features, List<String> stageNames, int[] stageEnds, int poolSize,
            Sequential classifier, float dropout) {
        super(arch, ((Linear) classifier.get(classifier.size() - 1)).outFeatures());
        this.features = child("features", features);
        this.classifier = child("classifier", classifier);
        this.headIndex = classifier.size() - 1;
        if (stageEnds.length != stageNames.size() || stageEnds[stageEnds.length - 1] != features.size()) {
            throw new IllegalArgumentException("stages must cover features[0.." + features.size() + ")");
        }
        this.poolSize = poolSize;
        List<String> names = new ArrayList<>(stageNames);
        names.add("head");
        List<List<String>> modules = new ArrayList<>();
        List<int[]> r = new ArrayList<>();
        int from = 0;
        for (int end : stageEnds) {
            List<String> m = new ArrayList<>();
            for (int i = from; i < end; i++) {
                m.add("features." + i);
            }
            modules.add(List.copyOf(m));
            r.add(new int[] {from, end});
            from = end;
        }
        modules.add(List.of("classifier"));
        this.ranges = List.copyOf(r);
        declareStages(names, modules);
        setDropout(dropout);
    }

    @Override
    protected NDList runStage(int stage, ParameterStore ps, NDList x, boolean training) {
        if (stage < ranges.size()) {
            int[] r = ranges.get(stage);
            return features.forwardRange(ps, x, training, r[0], r[1]);
        }
        if (stage != ranges.size()) {
            throw new IllegalArgumentException("no stage " + stage);
        }
        NDArray f = pool(x.singletonOrThrow());
        NDList y = new NDList(f.reshape(f.getShape().get(0), -1));
        for (int i = 0; i < headIndex; i++) {
            Block b = classifier.get(i);
            if (i == headIndex - 1 && b instanceof DropoutLayer) {
                continue; // the head's dropout is this network's, applied by headForward
            }
            y = b.forward(ps, y, training);
        }
        return headForward(ps, y.singletonOrThrow(), training);
    }

    /** {@code adaptive_avg_pool2d(x, poolSize)}; a 2-D input (cached pooled features) passes through. */
    private NDArray pool(NDArray x) {
        if (x.getShape().dimension() != 4) {
            return x;
        }
        if (poolSize == 1) {
            return Pool.globalAvgPool2d(x);
        }
        Shape s = x.getShape();
        if (s.get(2) == poolSize && s.get(3) == poolSize) {
            return x; // adaptive pooling to the input's own size is the identity
        }
        // DJL's NDArray API has no adaptive average pool; libtorch's own op, so the windows are PyTorch's.
        return JniUtils.adaptiveAvgPool((PtNDArray) x, new Shape(poolSize, poolSize));
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
        classifier.initialize(manager, dataType, new Shape(f.get(0), f.get(1) * poolSize * poolSize));
    }

    @Override
    protected GraphSink.Value traceStage(int stage, GraphSink g, GraphSink.Value x) {
        if (stage < ranges.size()) {
            return features.traceRange(g, "features.", x, ranges.get(stage)[0], ranges.get(stage)[1]);
        }
        GraphSink.Value y;
        if (poolSize == 1) {
            y = Traces.globalPoolFlatten(g, x);
        } else if (x.shape().get(2) == poolSize && x.shape().get(3) == poolSize) {
            y = new GraphSink.Value(g.op("Flatten", java.util.Map.of("axis", 1L), x.name()),
                    new Shape(x.shape().get(0), x.shape().size() / x.shape().get(0)));
        } else {
            y = Traces.adaptivePoolFlatten(g, x, poolSize);
        }
        return traceHead(g, classifier.traceRange(g, "classifier.", y, 0, headIndex));
    }
}
