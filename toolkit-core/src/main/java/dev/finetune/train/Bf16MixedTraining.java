package dev.finetune.train;

import dev.finetune.model.Network;
import dev.finetune.model.ResNet;
import dev.finetune.model.ResNetTrainScript;

/**
 * {@code train.precision: bf16-mixed}: whether the autograd part of a training step runs in bfloat16 mixed precision
 * ({@link ResNetTrainScript}, as {@code torch.autocast}), and the guard that checks it against the float32 step on this
 * host ({@link CheckedStepPath}: the first step of each input shape and every {@link #CHECK_EVERY}-th step run both
 * ways from the same state).
 *
 * <p>Tolerances detect a wrong kernel, not bf16's rounding, which is large: measured in PyTorch 1.13 on this
 * project's Fashion-MNIST ResNet-18 with train-mode BatchNorm, one step's per-module gradients under autocast differ
 * from float64's by 6–10 % (relative L2) at 16×32×32 and 128×64×64, 16–25 % at 8×96×96 and 16–34 % at 8×224×224, where
 * float32's differ by at most 0.3 %; the losses by 0.02–0.5 %. A gradient 100 % off is as far from the float32 one as
 * no gradient at all; the simulated defect ({@link dev.finetune.model.KernelFaults#setBf16TrainingWrong}) is 200 % off.
 */
final class Bf16MixedTraining extends CheckedStepPath {
    /** The loss, relative to {@code max(1, |loss|)}: 10× the largest difference measured. */
    static final double LOSS_TOLERANCE = 5e-2;
    /** Each top-level module's gradient, relative L2: 3× the largest difference measured. */
    static final double GRAD_TOLERANCE = 1.0;
    /**
     * Running statistics, relative to {@code max(1, |value|)}: one step moves them by momentum × the batch statistic,
     * whose bf16 error is bf16's (2^-8 relative) times the spread; 10× the largest difference ResNetTrainScriptTest
     * measures.
     */
    static final double STAT_TOLERANCE = 2e-2;

    Bf16MixedTraining() {
        super("bf16-mixed", "float32", LOSS_TOLERANCE, GRAD_TOLERANCE, STAT_TOLERANCE);
    }

    @Override
    String asked() {
        return "bf16-mixed (train.precision)";
    }

    /** Whether a step whose autograd part starts at {@code fromStage} runs in bf16 (until a check fails). */
    boolean wants(Network model, int fromStage) {
        return whyNot(model, fromStage) == null;
    }

    /** Why a step starting at {@code fromStage} runs in float32, or null if it runs in bf16. */
    String whyNot(Network model, int fromStage) {
        if (failed()) {
            return "a check against float32 failed on this host (run.json's fast_path has the figures)";
        }
        if (!(model instanceof ResNet r)) {
            return "bf16-mixed runs the ResNet family only";
        }
        return ResNetTrainScript.whyUnsupported(r, fromStage);
    }
}
