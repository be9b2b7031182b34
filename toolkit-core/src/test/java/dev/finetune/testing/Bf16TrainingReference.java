package dev.finetune.testing;

import java.nio.file.Path;

/**
 * PyTorch 1.13's side of the ResNet-18 training step in float32, bf16 autocast and float64
 * ({@code scripts/reference/bf16_training_reference.py}) on real Fashion-MNIST batches, shared by
 * {@code ResNetTrainScriptTest} and {@code Bf16MixedTrainingTest}. The 96×96 batch is built only for the exhaustive
 * step ({@code -Dfinetune.test.exhaustive=true}, {@code .ci/run}), the only one that reads it: in every test run it
 * would cost a third of the script's time (16 of 46 s of CPU).
 */
public final class Bf16TrainingReference {
    /** SIZE:BATCH of every test run; {@code scripts/reference/prebuild.py} reads this line and builds it alike. */
    public static final String SIZES = "32:16,64:32";
    /** The exhaustive step's: {@link #SIZES} and a 96×96 batch of 8. */
    public static final String EXHAUSTIVE_SIZES = SIZES + ",96:8";

    private Bf16TrainingReference() {}

    /** Whether this run builds (and tests) the exhaustive sizes. */
    public static boolean exhaustive() {
        return Boolean.getBoolean("finetune.test.exhaustive");
    }

    /** The sizes this run has: {@link #EXHAUSTIVE_SIZES} in the exhaustive step, {@link #SIZES} otherwise. */
    public static String sizes() {
        return exhaustive() ? EXHAUSTIVE_SIZES : SIZES;
    }

    /** The reference directory, built on first use (under a name per size set, so no build folder reuses another's). */
    public static Path get() throws Exception {
        return TorchReference.cached(exhaustive() ? "bf16-training-reference-all" : "bf16-training-reference", "DONE",
                "bf16_training_reference.py",
                TorchReference.repoRoot().resolve("models/resnet18-fmnist-a.safetensors").toString(), sizes());
    }
}
