package dev.finetune.train;

import ai.djl.ndarray.types.Shape;
import dev.finetune.model.GuardedPrefix;
import dev.finetune.model.Network;
import dev.finetune.model.ResNet;
import java.util.List;
import java.util.Locale;

/**
 * Whether the autograd part of a training step runs channels-last (NHWC storage, the same logical NCHW tensors), and
 * the guard that keeps it equal to NCHW on this host. It owns its state: the shapes checked, the step count, the
 * fallback.
 *
 * <p>Why: libtorch's oneDNN convolutions, forward and backward, are faster on channels-last input for large ResNet
 * batches (docs/performance.md has the figures). Only the input is converted; every later activation and gradient
 * follows the layout libtorch's kernels propagate, and the parameters stay NCHW.
 *
 * <p>Where: only when asked ({@code train.channels_last: auto} or {@code true}; off by default), and never through a
 * BatchNorm in train mode ({@link #trainModeBatchNormFrom}: libtorch's channels-last BN backward is percent-level off
 * in float32). So it serves full fine-tunes with {@code batchnorm: freeze-stats} and partial ones whose trainable part
 * keeps BN statistics frozen. Off by default because even there its float32 rounding is coarser than NCHW's on one
 * thread: three SGD steps at 4×96×96 from the Fashion-MNIST ResNet-18 differ from NCHW by up to 0.43 % per
 * parameter, in PyTorch 1.13 as here (0.01 % with two threads), where NCHW is within 0.06 % of float64.
 *
 * <p>Why a guard: a channels-last kernel can be wrong on one CPU and right on another (see
 * {@link dev.finetune.model.KernelFaults}). So the first step of every input shape, and then every
 * {@link #CHECK_EVERY}-th step, runs twice on the same batch from the same state — NCHW, then channels-last — and the
 * loss, the gradient of every top-level module and the BatchNorm running statistics are compared
 * ({@link FineTuner}). The step keeps the channels-last result when it is within tolerance; otherwise it keeps the NCHW
 * result, channels-last is off for the rest of this fine-tuner's life, a warning says why once, and
 * {@link #report()} records it. On a host where the path is right the check costs one extra forward and backward per
 * input shape and per {@code CHECK_EVERY} steps (0.2 %).
 *
 * <p>Tolerance: the loss within {@code 1e-4 * max(1, |loss|)}; each module's gradient within {@link #GRAD_TOLERANCE}
 * of the NCHW one in relative L2 norm — a detector of defects (stop 25's was 38 %), not of rounding: conv1's gradient
 * differs by 2.1e-3 between the layouts at 32×224 (a reduction of 401,408 terms per weight); running statistics within
 * {@code 1e-4 * max(1, |value|)}.
 */
final class ChannelsLastTraining extends CheckedStepPath {
    /**
     * System property, the default of a fine-tuner that is not told: {@code false} (or unset) keeps training steps
     * NCHW, {@code auto} runs channels-last where {@link #wants} says, {@code true} at every input size and for every
     * family (still checked, never through train-mode BN).
     */
    static final String PROPERTY = "finetune.train.channels_last";

    /** Relative L2 tolerance of each top-level module's gradient. */
    static final double GRAD_TOLERANCE = 2e-2;

    /** Relative tolerance of the loss and of the running statistics. */
    static final double VALUE_TOLERANCE = 1e-4;

    /** What is asked for. */
    enum Mode {
        /** ResNet family at {@link GuardedPrefix#SMALL_INPUT_PIXELS} pixels per batch or more. */
        AUTO,
        /** Every 4-D input, every family. */
        ON,
        /** Never. */
        OFF;

        static Mode parse(String s) {
            if (s == null || s.isBlank()) {
                return OFF;
            }
            return switch (s.trim().toLowerCase(Locale.ROOT)) {
                case "auto" -> AUTO;
                case "true", "on" -> ON;
                case "false", "off" -> OFF;
                default -> throw new IllegalArgumentException(
                        PROPERTY + " must be auto, true or false, found " + s);
            };
        }
    }

    private final Mode mode;

    ChannelsLastTraining(Mode mode) {
        super("channels-last", "NCHW", VALUE_TOLERANCE, GRAD_TOLERANCE, VALUE_TOLERANCE);
        this.mode = mode;
    }

    @Override
    String asked() {
        return "channels-last (" + mode.name().toLowerCase(Locale.ROOT) + ")";
    }

    /** Whether a step whose autograd part starts at {@code fromStage} with input {@code x} should run channels-last. */
    boolean wants(Network model, Shape x, int fromStage) {
        if (failed() || mode == Mode.OFF || x.dimension() != 4 || trainModeBatchNormFrom(model, fromStage)) {
            return false;
        }
        if (mode == Mode.ON) {
            return true;
        }
        // Measured for ResNet full fine-tunes only (docs/performance.md); below the threshold, layout changes cost
        // more than channels-last convolutions gain, as for the folded prefix (GuardedPrefix.SMALL_INPUT_PIXELS).
        return model instanceof ResNet && fromStage == 0
                && x.get(0) * x.get(2) * x.get(3) >= GuardedPrefix.SMALL_INPUT_PIXELS;
    }

    /**
     * Whether a BatchNorm in train mode (batch statistics) runs in stages {@code [fromStage, end)}. libtorch's
     * channels-last BatchNorm backward loses precision there: measured in PyTorch 1.13 with this project's
     * Fashion-MNIST ResNet-18 on Fashion-MNIST images, the gradients of conv1 … layer4 differ from the float64 step by
     * 0.4–0.8 % at 8×64×64, 1–1.1 % at 128×64×64 and 3.3–5.8 % at 32×224×224 in channels-last, against 1e-6 … 5e-4 in
     * NCHW (libtorch 2.7.1 here: 2.0 % at 4×96×96 as PyTorch 1.13's 2.0 %). That is not within any tolerance a
     * fast path may have, so train-mode BN keeps training steps NCHW.
     */
    static boolean trainModeBatchNormFrom(Network model, int fromStage) {
        for (Network.NamedBatchNorm n : model.batchNorms()) {
            if (n.bn().mode() == dev.finetune.model.BnMode.TRAIN && model.stageIndexOf(n.name()) >= fromStage) {
                return true;
            }
        }
        return false;
    }

    /**
     * How training steps whose autograd part starts at {@code fromStage} with input {@code x} will run, in words, with
     * the reason when channels-last was asked for and will not run; null when it was not asked for (NCHW, the default).
     */
    String explain(Network model, Shape x, int fromStage) {
        if (mode == Mode.OFF) {
            return null;
        }
        String asked = " (train.channels_last: " + (mode == Mode.ON ? "true" : "auto") + ")";
        if (wants(model, x, fromStage)) {
            return "channels-last for input " + x + asked + ", checked against NCHW on the first step of each"
                    + " input shape and every " + checkEvery() + " steps";
        }
        String why;
        if (trainModeBatchNormFrom(model, fromStage)) {
            why = "a BatchNorm in train mode trains (channels-last BN backward is percent-level off in float32);"
                    + " freeze.batchnorm: freeze-stats allows it";
        } else if (!(model instanceof ResNet)) {
            why = "auto is for the ResNet family; true asks for it anyway";
        } else if (fromStage != 0) {
            why = "auto is for networks that train from the stem (here from " + model.stageNames().get(fromStage)
                    + "); true asks for it anyway";
        } else {
            why = "auto starts at " + GuardedPrefix.SMALL_INPUT_PIXELS + " input pixels per batch (N·H·W), this"
                    + " batch has " + x.get(0) * x.get(2) * x.get(3) + "; true asks for it anyway";
        }
        return "NCHW" + asked + ": " + why;
    }
}
