package dev.finetune.model;

import dev.finetune.engine.CpuFeatures;
import java.util.Locale;

/**
 * The arithmetic a fixed (frozen, BN-folded) part of the network runs in: float32, or bfloat16 where the CPU has it
 * ({@link Bf16Prefix}). Training arithmetic (everything with a gradient) is always float32.
 */
public enum Precision {
    /** float32 everywhere (the default). */
    FP32("fp32"),
    /** The fixed prefix in bfloat16 (8-bit mantissa), its output converted back to float32. */
    BF16("bf16");

    private final String configName;

    Precision(String configName) {
        this.configName = configName;
    }

    public String configName() {
        return configName;
    }

    /**
     * {@code fp32} or {@code bf16} (null is fp32).
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
        throw new IllegalArgumentException("must be fp32 or bf16, found '" + text + "'");
    }

    /**
     * Why this precision cannot run here, or null if it can: bf16 needs a CPU with bfloat16 instructions
     * ({@code avx512_bf16} or {@code amx_bf16}); without them libtorch emulates it, slower than float32 and no more
     * exact, so it is refused rather than run.
     */
    public String whyUnavailable() {
        if (this == BF16 && !CpuFeatures.hasBf16()) {
            return "bf16 needs a CPU with bfloat16 instructions (avx512_bf16 or amx_bf16), and this one ("
                    + CpuFeatures.describe() + ") has neither: without them bf16 is emulated, slower than fp32";
        }
        return null;
    }

    /**
     * Why this precision cannot run {@code model} here, or null if it can: the CPU ({@link #whyUnavailable()}), then
     * the family — bf16 runs the folded prefix of the ResNet family only ({@link Bf16Prefix}).
     */
    public String whyUnavailable(Network model) {
        String why = whyUnavailable();
        if (why == null && this == BF16 && !(model instanceof ResNet)) {
            why = "bf16 runs the frozen prefix of the ResNet family (resnet*, resnext*, wide_resnet*) only, and this"
                    + " model is " + model.arch().configName();
        }
        return why;
    }
}
