package dev.finetune.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Block;
import ai.djl.nn.Parameter;
import ai.djl.training.ParameterStore;
import dev.finetune.engine.Engines;
import dev.finetune.engine.Warnings;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The frozen prefix of any family (MobileNet, EfficientNet, RegNet, DenseNet, VGG …) with every conv+BN pair folded
 * into one convolution ({@link FoldedConvBn}): each pair of adjacent children of an {@code nn.Sequential} — a
 * {@code Conv2dNormActivation}'s conv and BN, VGG's {@code features.k, k+1}, DenseNet's {@code conv0, norm0} — whose
 * parameters are frozen and whose BN keeps its statistics. The network's own forward runs, with the pairs swapped in
 * on this thread only ({@link FoldScope}); contiguous NCHW throughout (the ResNet family's {@link GuardedPrefix} also
 * tries channels-last).
 *
 * <p>The guard: the first time an input shape is seen, the folded output is compared with the plain network's
 * ({@link GuardedPrefix#TOLERANCE} × max(1, max|plain|)); if it differs, folding is switched off for good, the plain
 * output is used, it is said once and recorded in the report.
 */
public final class FoldedStages implements FrozenPrefix {
    private final Network model;
    private final ParameterStore ps;
    private final int toStage;
    private final NDManager manager;
    private Map<Sequential, Map<Integer, FoldedConvBn>> folds;
    private final int pairs;
    private final Set<Shape> verified = new HashSet<>();
    private final List<FastPathReport.Check> checks = new ArrayList<>();
    private final List<String> fallbacks = new ArrayList<>();

    private FoldedStages(Network model, ParameterStore ps, int toStage, NDManager manager,
            Map<Sequential, Map<Integer, FoldedConvBn>> folds, int pairs) {
        this.model = model;
        this.ps = ps;
        this.toStage = toStage;
        this.manager = manager;
        this.folds = folds;
        this.pairs = pairs;
    }

    /**
     * The longest prefix of stages that is a fixed function: every parameter frozen and every BN keeping its
     * statistics, the head excluded; 0 if the first stage is not.
     */
    public static int foldablePrefix(Network model) {
        int k = model.stageNames().size() - 1;
        for (Map.Entry<String, Parameter> e : model.namedTensors().entrySet()) {
            if (e.getValue().requiresGradient()) {
                k = Math.min(k, model.stageIndexOf(e.getKey()));
            }
        }
        for (Network.NamedBatchNorm n : model.batchNorms()) {
            if (n.bn().mode() != BnMode.FROZEN_STATS) {
                k = Math.min(k, model.stageIndexOf(n.name()));
            }
        }
        return k;
    }

    /** Folds every foldable conv+BN pair of stages {@code [0, toStage)}; null when there is none to fold. */
    public static FoldedStages fold(Network model, ParameterStore ps, int toStage, NDManager parent) {
        NDManager manager = parent.newSubManager();
        Map<Sequential, Map<Integer, FoldedConvBn>> folds = new IdentityHashMap<>();
        int count = 0;
        try {
            for (Map.Entry<String, Block> e : model.namedModules().entrySet()) {
                if (!(e.getValue() instanceof Sequential s)) {
                    continue;
                }
                for (int i = 0; i + 1 < s.size(); i++) {
                    String convName = childName(e.getKey(), s, i);
                    if (s.get(i) instanceof Conv2d conv && s.get(i + 1) instanceof BatchNorm2d bn
                            && stageOf(model, convName) >= 0 && stageOf(model, convName) < toStage
                            && FoldedConvBn.whyNotFoldable(conv, bn) == null) {
                        folds.computeIfAbsent(s, x -> new LinkedHashMap<>())
                                .put(i, FoldedConvBn.fold(convName, conv, bn, manager));
                        count++;
                        i++;
                    }
                }
            }
        } catch (RuntimeException e) {
            manager.close();
            throw e;
        }
        if (count == 0) {
            manager.close();
            return null;
        }
        return new FoldedStages(model, ps, toStage, manager, folds, count);
    }

    private static String childName(String parent, Sequential s, int i) {
        String child = s.childName(i);
        return parent.isEmpty() ? child : parent + "." + child;
    }

    private static int stageOf(Network model, String name) {
        try {
            return model.stageIndexOf(name);
        } catch (IllegalArgumentException e) {
            return -1;
        }
    }

    /** Folded conv+BN pairs. */
    public int pairs() {
        return pairs;
    }

    @Override
    public int toStage() {
        return toStage;
    }

    @Override
    public boolean isFolded() {
        return folds != null;
    }

    private String describe() {
        return folds == null ? "plain network (folding switched off by the guard)"
                : "folded, NCHW: " + pairs + " conv+BN pairs in " + String.join(", ",
                        model.stageNames().subList(0, toStage));
    }

    @Override
    public FastPathReport report() {
        return new FastPathReport("folded, NCHW", describe(), List.copyOf(checks), List.copyOf(fallbacks));
    }

    @Override
    public NDArray forward(NDArray x) {
        try (Engines.NoGrad g = Engines.noGrad()) {
            if (folds == null) {
                return plain(x);
            }
            if (verified.contains(x.getShape())) {
                return folded(x);
            }
            NDArray out = folded(x);
            NDArray reference = plain(x);
            double scale = Math.max(1, reference.abs().max().getFloat());
            double diff = reference.sub(out).abs().max().getFloat();
            boolean passed = diff <= GuardedPrefix.TOLERANCE * scale;
            checks.add(new FastPathReport.Check(x.getShape(), describe(), diff, scale, List.of(), passed));
            if (passed) {
                verified.add(x.getShape());
                reference.close();
                return out;
            }
            String why = "the folded prefix differs from the plain network by " + FastPathReport.fmt(diff)
                    + " at max |y| " + FastPathReport.fmt(scale) + " on input " + x.getShape()
                    + "; folding is switched off";
            fallbacks.add(why);
            Warnings.warnOnce("folded-stages", "fast path: " + why + " (results stay exact; " + model.arch().configName()
                    + "'s frozen prefix runs unfolded)");
            close();
            out.close();
            return reference;
        }
    }

    private NDArray folded(NDArray x) {
        return FoldScope.with(folds, () -> plain(x));
    }

    private NDArray plain(NDArray x) {
        return model.forwardStages(ps, new NDList(x), true, 0, toStage).singletonOrThrow();
    }

    @Override
    public void verify(Shape shape, NDManager m) {
        if (folds == null || verified.contains(shape)) {
            return;
        }
        try (NDManager scratch = m.newSubManager()) {
            forward(scratch.randomNormal(shape));
        }
    }

    /** Test hook: adds {@code delta} to every folded bias, as a wrong kernel would, to exercise the guard. */
    void corruptForTest(float delta) {
        folds.values().forEach(m -> m.values().forEach(f -> f.biasForTest().addi(delta)));
    }

    @Override
    public void close() {
        if (folds != null) {
            folds = null;
            manager.close();
        }
    }
}
