package dev.finetune.model;

import java.util.ArrayList;
import java.util.List;

/**
 * torchvision's VGG with batch normalization ({@code models/vgg.py}, {@code batch_norm=True}): 3×3 convs with bias,
 * BN, ReLU, max-pools, an adaptive 7×7 average pool and the 4096-4096 classifier with dropout 0.5.
 *
 * <p>Stages are the five conv blocks, each ending at its max-pool: {@code block1} … {@code block5}.
 */
public enum VggArch implements Architecture {
    VGG11_BN(new int[] {64, -1, 128, -1, 256, 256, -1, 512, 512, -1, 512, 512, -1}),
    VGG13_BN(new int[] {64, 64, -1, 128, 128, -1, 256, 256, -1, 512, 512, -1, 512, 512, -1}),
    VGG16_BN(new int[] {64, 64, -1, 128, 128, -1, 256, 256, 256, -1, 512, 512, 512, -1, 512, 512, 512, -1}),
    VGG19_BN(new int[] {
        64, 64, -1, 128, 128, -1, 256, 256, 256, 256, -1, 512, 512, 512, 512, -1, 512, 512, 512, 512, -1
    });

    private static final float DROPOUT = 0.5f;

    /** torchvision's {@code cfgs}: output channels of each 3×3 conv, -1 for a max-pool ("M"). */
    private final int[] cfg;

    VggArch(int[] cfg) {
        this.cfg = cfg;
    }


    @Override
    public String headName() {
        return "classifier.6";
    }

    @Override
    public FeaturesNetwork create(int classes) {
        Sequential features = new Sequential();
        List<String> stages = new ArrayList<>();
        int[] ends = new int[5];
        int in = 3;
        for (int v : cfg) {
            if (v < 0) {
                features.add(new MaxPool2d(2, 2, 0));
                ends[stages.size()] = features.size();
                stages.add("block" + (stages.size() + 1));
            } else {
                features.add(new Conv2d(in, v, 3, 1, 1, 1, true));
                features.add(new BatchNorm2d(v));
                features.add(new Act(Act.Kind.RELU));
                in = v;
            }
        }
        Sequential classifier = new Sequential(
                new Linear(512 * 7 * 7, 4096).normalInit(0.01f),
                new Act(Act.Kind.RELU),
                new DropoutLayer(DROPOUT),
                new Linear(4096, 4096).normalInit(0.01f),
                new Act(Act.Kind.RELU),
                new DropoutLayer(DROPOUT),
                new Linear(4096, classes).normalInit(0.01f));
        return new FeaturesNetwork(this, features, stages, ends, 7, classifier, DROPOUT);
    }
}
