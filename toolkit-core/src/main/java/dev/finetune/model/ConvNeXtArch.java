package dev.finetune.model;

import java.util.List;

/**
 * torchvision's ConvNeXt ({@code models/convnext.py}): a 4×4 stride-4 patchify stem with LayerNorm2d, stages of
 * {@link CNBlock}s (layer scale 1e-6, stochastic depth rising linearly to the variant's rate), LayerNorm2d + 2×2 conv
 * downsampling between stages, and the classifier {@code Sequential(LayerNorm2d, Flatten, Linear)}.
 *
 * <p>Stages: {@code stem} ({@code features.0}), {@code stage1} ({@code features.1}), then each later stage with the
 * downsampling before it: {@code stage2} = {@code features.2-3}, {@code stage3} = {@code 4-5}, {@code stage4} =
 * {@code 6-7}. No BatchNorm: the freeze policy's {@code batchnorm} modes have nothing to act on.
 */
public enum ConvNeXtArch implements Architecture {
    CONVNEXT_TINY(new int[] {96, 192, 384, 768}, new int[] {3, 3, 9, 3}, 0.1f),
    CONVNEXT_SMALL(new int[] {96, 192, 384, 768}, new int[] {3, 3, 27, 3}, 0.4f);

    private static final List<String> STAGES = List.of("stem", "stage1", "stage2", "stage3", "stage4");
    private static final float LAYER_SCALE = 1e-6f;
    private static final double EPS = 1e-6;

    private final int[] dims;
    private final int[] depths;
    private final float stochasticDepth;

    ConvNeXtArch(int[] dims, int[] depths, float stochasticDepth) {
        this.dims = dims;
        this.depths = depths;
        this.stochasticDepth = stochasticDepth;
    }


    @Override
    public String headName() {
        return "classifier.2";
    }

    @Override
    public FeaturesNetwork create(int classes) {
        Sequential features = new Sequential();
        features.add(new Sequential(new Conv2d(3, dims[0], 4, 4, 0, 1, true).truncNormalInit(0.02f),
                new LayerNorm(dims[0], EPS, true)));
        int total = 0;
        for (int d : depths) {
            total += d;
        }
        int id = 0;
        for (int s = 0; s < dims.length; s++) {
            Sequential stage = new Sequential();
            for (int i = 0; i < depths[s]; i++) {
                stage.add(new CNBlock(dims[s], LAYER_SCALE, (float) (stochasticDepth * id / (total - 1.0))));
                id++;
            }
            features.add(stage);
            if (s + 1 < dims.length) {
                features.add(new Sequential(new LayerNorm(dims[s], EPS, true),
                        new Conv2d(dims[s], dims[s + 1], 2, 2, 0, 1, true).truncNormalInit(0.02f)));
            }
        }
        int last = dims[dims.length - 1];
        Sequential classifier = new Sequential(new LayerNorm(last, EPS, true), Reshape.flatten(),
                new Linear(last, classes).truncNormalInit(0.02f));
        return new FeaturesNetwork(this, features, STAGES, new int[] {1, 2, 4, 6, 8}, 1, classifier, 0f);
    }
}
