package dev.finetune.model;

import java.util.List;

/**
 * torchvision's MobileNetV2 and MobileNetV3 (large, small) at width 1.0, built as {@code models/mobilenetv2.py} and
 * {@code models/mobilenetv3.py} build them: the same {@code features} indices, inverted residuals, BN settings
 * (V3: eps 0.001, momentum 0.01), activations and classifier.
 *
 * <p>Stages split {@code features} where the resolution halves: {@code stem} is {@code features.0}, then
 * {@code stage1} … at output strides 2, 4, 8, 16, 32 (the last stage includes the final 1×1 conv).
 */
public enum MobileNetArch implements Architecture {
    MOBILENET_V2,
    MOBILENET_V3_LARGE,
    MOBILENET_V3_SMALL;

    /** MobileNetV2's {@code inverted_residual_setting}: expand ratio t, channels c, repeats n, stride s. */
    private static final int[][] V2 = {
        {1, 16, 1, 1}, {6, 24, 2, 2}, {6, 32, 3, 2}, {6, 64, 4, 2}, {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}
    };

    /** MobileNetV3-Large's rows: in, kernel, expanded, out, SE, hardswish, stride. */
    private static final int[][] V3_LARGE = {
        {16, 3, 16, 16, 0, 0, 1}, {16, 3, 64, 24, 0, 0, 2}, {24, 3, 72, 24, 0, 0, 1}, {24, 5, 72, 40, 1, 0, 2},
        {40, 5, 120, 40, 1, 0, 1}, {40, 5, 120, 40, 1, 0, 1}, {40, 3, 240, 80, 0, 1, 2}, {80, 3, 200, 80, 0, 1, 1},
        {80, 3, 184, 80, 0, 1, 1}, {80, 3, 184, 80, 0, 1, 1}, {80, 3, 480, 112, 1, 1, 1}, {112, 3, 672, 112, 1, 1, 1},
        {112, 5, 672, 160, 1, 1, 2}, {160, 5, 960, 160, 1, 1, 1}, {160, 5, 960, 160, 1, 1, 1}
    };

    private static final int[][] V3_SMALL = {
        {16, 3, 16, 16, 1, 0, 2}, {16, 3, 72, 24, 0, 0, 2}, {24, 3, 88, 24, 0, 0, 1}, {24, 5, 96, 40, 1, 1, 2},
        {40, 5, 240, 40, 1, 1, 1}, {40, 5, 240, 40, 1, 1, 1}, {40, 5, 120, 48, 1, 1, 1}, {48, 5, 144, 48, 1, 1, 1},
        {48, 5, 288, 96, 1, 1, 2}, {96, 5, 576, 96, 1, 1, 1}, {96, 5, 576, 96, 1, 1, 1}
    };

    private static final List<String> STAGES = List.of("stem", "stage1", "stage2", "stage3", "stage4", "stage5");
    private static final float DROPOUT = 0.2f;


    @Override
    public String headName() {
        return this == MOBILENET_V2 ? "classifier.1" : "classifier.3";
    }

    @Override
    public FeaturesNetwork create(int classes) {
        return this == MOBILENET_V2 ? v2(classes) : v3(classes);
    }

    private FeaturesNetwork v2(int classes) {
        float eps = 1e-5f;
        float momentum = 0.1f;
        Sequential features = new Sequential();
        features.add(Sequential.convNormAct(3, 32, 3, 2, 1, Act.Kind.RELU6, eps, momentum));
        int in = 32;
        for (int[] row : V2) {
            int t = row[0];
            int c = row[1];
            for (int i = 0; i < row[2]; i++) {
                int stride = i == 0 ? row[3] : 1;
                int hidden = Math.round(in * (float) t);
                Sequential body = new Sequential();
                if (t != 1) {
                    body.add(Sequential.convNormAct(in, hidden, 1, 1, 1, Act.Kind.RELU6, eps, momentum));
                }
                body.add(Sequential.convNormAct(hidden, hidden, 3, stride, hidden, Act.Kind.RELU6, eps, momentum));
                body.add(new Conv2d(hidden, c, 1, 1, 0));
                body.add(new BatchNorm2d(c, eps, momentum));
                features.add(new InvertedResidual("conv", body, stride == 1 && in == c));
                in = c;
            }
        }
        features.add(Sequential.convNormAct(in, 1280, 1, 1, 1, Act.Kind.RELU6, eps, momentum));
        Sequential classifier = new Sequential(new DropoutLayer(DROPOUT), new Linear(1280, classes).normalInit(0.01f));
        // Strides: features.1 at 2, features.2-3 at 4, 4-6 at 8, 7-13 at 16, 14-18 at 32.
        return new FeaturesNetwork(this, features, STAGES, new int[] {1, 2, 4, 7, 14, 19}, 1, classifier, DROPOUT);
    }

    private FeaturesNetwork v3(int classes) {
        float eps = 1e-3f;
        float momentum = 0.01f;
        boolean large = this == MOBILENET_V3_LARGE;
        int[][] rows = large ? V3_LARGE : V3_SMALL;
        Sequential features = new Sequential();
        features.add(Sequential.convNormAct(3, rows[0][0], 3, 2, 1, Act.Kind.HARDSWISH, eps, momentum));
        for (int[] r : rows) {
            int in = r[0];
            int kernel = r[1];
            int expanded = r[2];
            int out = r[3];
            Act.Kind act = r[5] == 1 ? Act.Kind.HARDSWISH : Act.Kind.RELU;
            int stride = r[6];
            Sequential body = new Sequential();
            if (expanded != in) {
                body.add(Sequential.convNormAct(in, expanded, 1, 1, 1, act, eps, momentum));
            }
            body.add(Sequential.convNormAct(expanded, expanded, kernel, stride, expanded, act, eps, momentum));
            if (r[4] == 1) {
                body.add(new SqueezeExcitation(expanded, makeDivisible(expanded / 4, 8), Act.Kind.RELU,
                        Act.Kind.HARDSIGMOID));
            }
            body.add(Sequential.convNormAct(expanded, out, 1, 1, 1, null, eps, momentum));
            features.add(new InvertedResidual("block", body, stride == 1 && in == out));
        }
        int lastIn = rows[rows.length - 1][3];
        features.add(Sequential.convNormAct(lastIn, 6 * lastIn, 1, 1, 1, Act.Kind.HARDSWISH, eps, momentum));
        int lastChannel = large ? 1280 : 1024;
        Sequential classifier = new Sequential(
                new Linear(6 * lastIn, lastChannel).normalInit(0.01f),
                new Act(Act.Kind.HARDSWISH),
                new DropoutLayer(DROPOUT),
                new Linear(lastChannel, classes).normalInit(0.01f));
        // Large: features.1 at stride 2, 2-3 at 4, 4-6 at 8, 7-12 at 16, 13-16 at 32.
        // Small: features.1 at stride 4, 2-3 at 8, 4-8 at 16, 9-12 at 32.
        int[] ends = large ? new int[] {1, 2, 4, 7, 13, 17} : new int[] {1, 2, 4, 9, 13};
        return new FeaturesNetwork(this, features, STAGES.subList(0, ends.length), ends, 1, classifier, DROPOUT);
    }

    /** torchvision's {@code _make_divisible(v, divisor)}: the nearest multiple, never more than 10 % below. */
    static int makeDivisible(double v, int divisor) {
        int n = Math.max(divisor, (int) (v + divisor / 2.0) / divisor * divisor);
        if (n < 0.9 * v) {
            n += divisor;
        }
        return n;
    }
}
