package dev.finetune.model;

import java.util.ArrayList;
import java.util.List;

/**
 * torchvision's EfficientNet B0–B3 and EfficientNetV2-S, built as {@code models/efficientnet.py} builds them: MBConv
 * (and V2's FusedMBConv) stages as {@code features.1} … (each an {@code nn.Sequential} of blocks), squeeze-and-excitation
 * with SiLU, stochastic depth rising linearly to 0.2 over the blocks, the width and depth multipliers, V2's BN eps
 * 0.001, and the classifier {@code Sequential(Dropout, Linear)}.
 *
 * <p>Stages split {@code features} where the resolution halves: {@code stem} is {@code features.0}, then
 * {@code stage1} … {@code stage5} at output strides 2, 4, 8, 16, 32 (the last includes the final 1×1 conv).
 */
public enum EfficientNetArch implements Architecture {
    EFFICIENTNET_B0(1.0, 1.0, 0.2f),
    EFFICIENTNET_B1(1.0, 1.1, 0.2f),
    EFFICIENTNET_B2(1.1, 1.2, 0.3f),
    EFFICIENTNET_B3(1.2, 1.4, 0.3f),
    EFFICIENTNET_V2_S(1.0, 1.0, 0.2f);

    /** B0's rows: expand ratio, kernel, stride, in, out, layers. */
    private static final int[][] B = {
        {1, 3, 1, 32, 16, 1}, {6, 3, 2, 16, 24, 2}, {6, 5, 2, 24, 40, 2}, {6, 3, 2, 40, 80, 3},
        {6, 5, 1, 80, 112, 3}, {6, 5, 2, 112, 192, 4}, {6, 3, 1, 192, 320, 1}
    };

    /** V2-S's rows: fused (1) or not, expand ratio, kernel, stride, in, out, layers. */
    private static final int[][] V2_S = {
        {1, 1, 3, 1, 24, 24, 2}, {1, 4, 3, 2, 24, 48, 4}, {1, 4, 3, 2, 48, 64, 4}, {0, 4, 3, 2, 64, 128, 6},
        {0, 6, 3, 1, 128, 160, 9}, {0, 6, 3, 2, 160, 256, 15}
    };

    private static final List<String> STAGES = List.of("stem", "stage1", "stage2", "stage3", "stage4", "stage5");
    private static final float STOCHASTIC_DEPTH = 0.2f;

    private final double widthMult;
    private final double depthMult;
    private final float dropout;

    EfficientNetArch(double widthMult, double depthMult, float dropout) {
        this.widthMult = widthMult;
        this.depthMult = depthMult;
        this.dropout = dropout;
    }


    @Override
    public String headName() {
        return "classifier.1";
    }

    @Override
    public FeaturesNetwork create(int classes) {
        boolean v2 = this == EFFICIENTNET_V2_S;
        float eps = v2 ? 1e-3f : 1e-5f;
        float momentum = 0.1f;
        // Per configured stage: fused, expand, kernel, stride, in, out, layers (channels and depth adjusted).
        List<int[]> rows = new ArrayList<>();
        if (v2) {
            rows.addAll(List.of(V2_S));
        } else {
            for (int[] r : B) {
                rows.add(new int[] {0, r[0], r[1], r[2], channels(r[3]), channels(r[4]),
                    (int) Math.ceil(r[5] * depthMult)});
            }
        }
        int total = rows.stream().mapToInt(r -> r[6]).sum();
        Sequential features = new Sequential();
        features.add(Sequential.convNormAct(3, rows.get(0)[4], 3, 2, 1, Act.Kind.SILU, eps, momentum));
        int blockId = 0;
        for (int[] r : rows) {
            Sequential stage = new Sequential();
            for (int i = 0; i < r[6]; i++) {
                int in = i == 0 ? r[4] : r[5];
                int stride = i == 0 ? r[3] : 1;
                float sd = STOCHASTIC_DEPTH * blockId / total;
                stage.add(r[0] == 1 ? fused(r[1], r[2], stride, in, r[5], sd, eps, momentum)
                        : mbConv(r[1], r[2], stride, in, r[5], sd, eps, momentum));
                blockId++;
            }
            features.add(stage);
        }
        int lastIn = rows.get(rows.size() - 1)[5];
        int lastOut = v2 ? 1280 : 4 * lastIn;
        features.add(Sequential.convNormAct(lastIn, lastOut, 1, 1, 1, Act.Kind.SILU, eps, momentum));
        Sequential classifier = new Sequential(new DropoutLayer(dropout),
                new Linear(lastOut, classes).uniformInit((float) (1.0 / Math.sqrt(classes))));
        // B: features.1 at stride 2, 2 at 4, 3 at 8, 4-5 at 16, 6-8 at 32. V2-S: 1 at 2, 2 at 4, 3 at 8, 4-5 at 16,
        // 6-7 at 32.
        int[] ends = v2 ? new int[] {1, 2, 3, 4, 6, 8} : new int[] {1, 2, 3, 4, 6, 9};
        return new FeaturesNetwork(this, features, STAGES, ends, 1, classifier, dropout);
    }

    private int channels(int c) {
        return MobileNetArch.makeDivisible(c * widthMult, 8);
    }

    private static InvertedResidual mbConv(
            int expand, int kernel, int stride, int in, int out, float sd, float eps, float momentum) {
        int expanded = MobileNetArch.makeDivisible(in * (double) expand, 8);
        Sequential body = new Sequential();
        if (expanded != in) {
            body.add(Sequential.convNormAct(in, expanded, 1, 1, 1, Act.Kind.SILU, eps, momentum));
        }
        body.add(Sequential.convNormAct(expanded, expanded, kernel, stride, expanded, Act.Kind.SILU, eps, momentum));
        body.add(new SqueezeExcitation(expanded, Math.max(1, in / 4), Act.Kind.SILU, Act.Kind.SIGMOID));
        body.add(Sequential.convNormAct(expanded, out, 1, 1, 1, null, eps, momentum));
        return new InvertedResidual("block", body, stride == 1 && in == out, sd);
    }

    private static InvertedResidual fused(
            int expand, int kernel, int stride, int in, int out, float sd, float eps, float momentum) {
        int expanded = MobileNetArch.makeDivisible(in * (double) expand, 8);
        Sequential body = new Sequential();
        if (expanded != in) {
            body.add(Sequential.convNormAct(in, expanded, kernel, stride, 1, Act.Kind.SILU, eps, momentum));
            body.add(Sequential.convNormAct(expanded, out, 1, 1, 1, null, eps, momentum));
        } else {
            body.add(Sequential.convNormAct(in, out, kernel, stride, 1, Act.Kind.SILU, eps, momentum));
        }
        return new InvertedResidual("block", body, stride == 1 && in == out, sd);
    }
}
