package dev.finetune.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.pooling.Pool;
import ai.djl.training.ParameterStore;
import java.util.List;

/**
 * torchvision's RegNet ({@code models/regnet.py}): {@code stem} (3×3 stride-2 conv, BN, ReLU), {@code trunk_output}
 * with stages {@code block1} … {@code block4} of {@link RegNetBlock}s named {@code block1-0} …, and {@code fc}.
 *
 * <p>Stages: {@code stem}, {@code block1} … {@code block4}, {@code head}.
 */
public final class RegNet extends Network {
    private static final List<String> STAGES = List.of("stem", "block1", "block2", "block3", "block4", "head");
    private static final List<List<String>> MODULES = List.of(List.of("stem"), List.of("trunk_output.block1"),
            List.of("trunk_output.block2"), List.of("trunk_output.block3"), List.of("trunk_output.block4"),
            List.of("fc"));

    private final Sequential stem;
    private final Sequential trunk;

    RegNet(RegNetArch arch, int classes, int[] depths, int[] widths, int groupWidth, double seRatio) {
        super(arch, classes);
        stem = child("stem", Sequential.convNormAct(3, 32, 3, 2, 1, Act.Kind.RELU, 1e-5f, 0.1f));
        Sequential t = new Sequential();
        int in = 32;
        for (int s = 0; s < depths.length; s++) {
            Sequential stage = new Sequential();
            for (int i = 0; i < depths[s]; i++) {
                stage.add("block" + (s + 1) + "-" + i,
                        new RegNetBlock(i == 0 ? in : widths[s], widths[s], i == 0 ? 2 : 1, groupWidth, seRatio));
            }
            t.add("block" + (s + 1), stage);
            in = widths[s];
        }
        trunk = child("trunk_output", t);
        child("fc", new Linear(in, classes).normalInit(0.01f));
        declareStages(STAGES, MODULES);
    }

    @Override
    protected NDList runStage(int stage, ParameterStore ps, NDList x, boolean training) {
        if (stage == 0) {
            return stem.forward(ps, x, training);
        }
        if (stage <= 4) {
            return trunk.get(stage - 1).forward(ps, x, training);
        }
        if (stage != 5) {
            throw new IllegalArgumentException("no stage " + stage);
        }
        NDArray f = x.singletonOrThrow();
        if (f.getShape().dimension() == 4) {
            f = Pool.globalAvgPool2d(f).reshape(f.getShape().get(0), -1);
        }
        return headForward(ps, f, training);
    }

    @Override
    protected Shape stageOutputShape(int stage, Shape in) {
        if (stage == 0) {
            return stem.getOutputShapes(new Shape[] {in})[0];
        }
        if (stage <= 4) {
            return trunk.get(stage - 1).getOutputShapes(new Shape[] {in})[0];
        }
        return new Shape(in.get(0), numClasses());
    }

    @Override
    protected void initializeChildBlocks(NDManager manager, DataType dataType, Shape... inputShapes) {
        stem.initialize(manager, dataType, inputShapes);
        Shape[] s = stem.getOutputShapes(inputShapes);
        trunk.initialize(manager, dataType, s);
        s = trunk.getOutputShapes(s);
        head().initialize(manager, dataType, new Shape(s[0].get(0), s[0].get(1)));
    }

    @Override
    protected GraphSink.Value traceStage(int stage, GraphSink g, GraphSink.Value x) {
        if (stage == 0) {
            return traceChild(g, "", "stem", x);
        }
        if (stage <= 4) {
            return ((TorchModule) trunk.get(stage - 1)).trace(g, "trunk_output." + trunk.childName(stage - 1) + ".", x);
        }
        return traceHead(g, Traces.globalPoolFlatten(g, x));
    }
}
