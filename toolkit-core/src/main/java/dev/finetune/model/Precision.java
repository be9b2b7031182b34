package dev.finetune.model;

import dev.finetune.engine.CpuFeatures;
import java.util.Locale;

/**
 * The arithmetic a fixed (frozen, BN-folded) part of the network runs in: float32, or bfloat16 where the CPU has it
 * ({@link Bf16Prefix}); or, with {@code bf16-mixed}, that and the autograd part of training steps in bfloat16 mixed
 * precision ({@link ResNetTrainScript}: as PyTorch's {@code torch.autocast}, float32 parameters, gradients and optimizer
 * state). Evaluation, prediction and export are always float32.
 */
public enum Precision {
    /** float32 everywhere (the default). */
    FP32("fp32"),
    /** The fixed prefix in bfloat16 (8-bit mantissa), its output converted back to float32. */
    BF16("bf16"),
    /**
     * {@link #BF16}'s prefix, and the forward and backward of the trainable stages with convolutions and the head in
     * bfloat16, as {@code torch.autocast("cpu", dtype=torch.bfloat16)} (Lightning's {@code precision="bf16-mixed"}).
     */
    BF16_MIXED("bf16-mixed");

    private final String configName;

    Precision(String configName) {
        this.configName = configName;
    }

    public String configName() {
        return configName;
    }

    /**
     * {@code fp32}, {@code bf16} or {@code bf16-mixed} (null is fp32).
     *
     * @throws IllegalArgumentException naming the accepted values
     */
    public static Precision parse(String text) {
        if (text == null) {
            return FP32;
        }
        for (Precision p : values()) {
            if (p.configName.equals(text.toLowerCase(Locale.ROOT))) {
                return p;
            }
        }
        throw new IllegalArgumentException("must be fp32, bf16 or bf16-mixed, found '" + text + "'");
    }

    /**
     * {@code fp32} or {@code bf16} (null is fp32): the precisions of inference ({@code evaluate}, {@code predict}).
     *
     * @throws IllegalArgumentException naming the accepted values, and for {@code bf16-mixed} where it belongs
     */
    public static Precision parseInference(String text) {
        Precision p;
        try {
            p = parse(text);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("must be fp32 or bf16, found '" + text + "'");
        }
        if (p == BF16_MIXED) {
            throw new IllegalArgumentException("must be fp32 or bf16, found 'bf16-mixed' (mixed precision is for"
                    + " training: train.precision in the config)");
        }
        return p;
    }

    /**
     * Why this precision cannot run here, or null if it can: bf16 needs a CPU with bfloat16 instructions
     * ({@code avx512_bf16} or {@code amx_bf16}); without them libtorch emulates it, slower than float32 and no more
     * exact, so it is refused rather than run.
     */
    public String whyUnavailable() {
        if (this != FP32 && !CpuFeatures.hasBf16()) {
            return configName + " needs a CPU with bfloat16 instructions (avx512_bf16 or amx_bf16), and this one ("
                    + CpuFeatures.describe() + ") has neither: without them bf16 is emulated, slower than fp32";
        }
        return null;
    }

    /**
     * Why this precision cannot run {@code model} here, or null if it can: the CPU ({@link #whyUnavailable()}), then
     * the family — bf16 runs the folded prefix of the ResNet family only ({@link Bf16Prefix}), bf16-mixed its
     * training steps ({@link ResNetTrainScript}).
     */
    public String whyUnavailable(Network model) {
        String why = whyUnavailable();
        if (why == null && this != FP32 && !(model instanceof ResNet)) {
            why = (this == BF16 ? "bf16 runs the frozen prefix of the ResNet family"
                    : "bf16-mixed runs the training steps of the ResNet family")
                    + " (resnet*, resnext*, wide_resnet*) only, and this"
                    + " model is " + model.arch().configName();
        }
        return why;
    }
}
