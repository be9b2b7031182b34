package dev.finetune.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.index.NDIndex;

/**
 * A simulated kernel defect, so that the fast-path guard ({@link GuardedPrefix}) can be tested on a host whose libtorch
 * computes correctly. Off unless set.
 *
 * <p>The defect it imitates was seen on an AMD Zen 5 host: libtorch 2.7.1 computes a 1×1, stride-2 convolution with
 * 512 output channels wrongly on a channels-last input (off by 1.3–1.7 at |y| ≈ 5). With
 * {@code -Dfinetune.fault.channels_last_conv=512:1:2} (output channels : kernel : stride) or
 * {@link #setChannelsLastConv(String)}, every folded convolution of that shape run channels-last gets 1.5 added to its
 * output, as that host would have it. A fourth field {@code :any} makes the fault hit NCHW runs of the folded
 * convolution too (a defect the per-convolution check cannot see, which the whole-prefix check must catch);
 * {@code :last} makes it hit only the batch's last image (a kernel wrong in its remainder block: what a check over
 * part of the batch would miss).
 */
public final class KernelFaults {
    /** The system property that sets the fault at start-up. */
    public static final String PROPERTY = "finetune.fault.channels_last_conv";

    private static volatile int[] channelsLastConv = parse(System.getProperty(PROPERTY));

    private static volatile boolean bf16Wrong;

    private KernelFaults() {}

    /** Sets or clears a simulated defect of the bf16 path ({@link Bf16Prefix}): its output comes out 1.5× too large. */
    public static void setBf16Wrong(boolean on) {
        bf16Wrong = on;
    }

    /** {@code y}, or {@code 1.5 * y} while {@link #setBf16Wrong} is on. */
    static NDArray applyBf16(NDArray y) {
        return bf16Wrong ? y.mul(1.5f) : y;
    }

    private static volatile boolean maxPoolIndicesWrong;

    /**
     * Sets or clears a simulated defect of the channels-last max pool ({@link MaxPoolIndices}): every index it returns
     * comes out as 0 (the first position of each plane), and the values gathered with them are wrong.
     */
    public static void setMaxPoolIndicesWrong(boolean on) {
        maxPoolIndicesWrong = on;
    }

    /** Whether {@link #setMaxPoolIndicesWrong} is on. */
    static boolean maxPoolIndicesWrong() {
        return maxPoolIndicesWrong;
    }

    private static volatile boolean channelsLastTrainingWrong;

    /**
     * Sets or clears a simulated defect of channels-last training steps (the one stop 25 saw: layer4's gradients 38 %
     * off): after every channels-last training step, each {@code layer4} gradient is scaled by 1.38.
     */
    public static void setChannelsLastTrainingWrong(boolean on) {
        channelsLastTrainingWrong = on;
    }

    /** Whether {@link #setChannelsLastTrainingWrong} is on. */
    public static boolean channelsLastTrainingWrong() {
        return channelsLastTrainingWrong;
    }

    /**
     * Applies {@link #setChannelsLastTrainingWrong} to the gradients of {@code params} named {@code names} (torchvision's
     * names; a no-op when off).
     */
    public static void applyChannelsLastTraining(java.util.List<String> names,
            java.util.List<ai.djl.nn.Parameter> params) {
        if (channelsLastTrainingWrong) {
            scaleLayer4Gradients(names, params, 1.38f);
        }
    }

    private static volatile boolean bf16TrainingWrong;

    /**
     * Sets or clears a simulated defect of bf16 mixed-precision training steps ({@code train.precision: bf16-mixed}):
     * after such a step, layer4's gradients point the other way (a relative difference of 2, twice the guard's bound
     * and far beyond bf16's own rounding).
     */
    public static void setBf16TrainingWrong(boolean on) {
        bf16TrainingWrong = on;
    }

    /** Applies the defect {@link #setBf16TrainingWrong} set, after a bf16 mixed-precision step; no-op when clear. */
    public static void applyBf16Training(java.util.List<String> names, java.util.List<ai.djl.nn.Parameter> params) {
        if (bf16TrainingWrong) {
            scaleLayer4Gradients(names, params, -1f);
        }
    }

    private static void scaleLayer4Gradients(java.util.List<String> names, java.util.List<ai.djl.nn.Parameter> params,
            float factor) {
        for (int i = 0; i < params.size(); i++) {
            if (names.get(i).startsWith("layer4.")) {
                try (NDArray g = params.get(i).getArray().getGradient()) {
                    g.muli(factor);
                }
            }
        }
    }

    private static volatile boolean scriptedWrong;

    /**
     * Sets or clears a simulated defect of the float32 scripted folded prefix ({@link FoldedResNetScript}): its output
     * comes out 1.001× too large (ten times the guard's tolerance, far below what a shape check would notice).
     */
    public static void setScriptedWrong(boolean on) {
        scriptedWrong = on;
    }


    /**
     * Sets ({@code "512:1:2"}, {@code "512:1:2:any"}, {@code "64:7:2:last"}) or clears ({@code null}) the simulated
     * defect.
     */
    public static void setChannelsLastConv(String spec) {
        channelsLastConv = parse(spec);
    }

    private static int[] parse(String spec) {
        if (spec == null || spec.isBlank()) {
            return null;
        }
        String[] parts = spec.trim().split(":");
        boolean any = parts.length == 4 && parts[3].trim().equals("any");
        boolean last = parts.length == 4 && parts[3].trim().equals("last");
        if (parts.length != 3 && !any && !last) {
            throw new IllegalArgumentException(
                    PROPERTY + " must be OUT:KERNEL:STRIDE[:any|:last] (e.g. 512:1:2), found " + spec);
        }
        int[] out = new int[4];
        for (int i = 0; i < 3; i++) {
            out[i] = Integer.parseInt(parts[i].trim());
        }
        out[3] = any ? 1 : last ? 2 : 0;
        return out;
    }

    /**
     * The output {@code y} of a scripted folded prefix ({@link FoldedPrefix#forwardScripted}) with the simulated
     * defects: 1.001× while {@link #setScriptedWrong} is on; and 1.5 added to the whole output if one of its
     * convolutions has the faulty channels-last shape and ran in the faulty layout (the defect cannot be placed inside
     * the TorchScript call; the guard sees the prefix's output only, and then finds the convolution op by op).
     */
    static NDArray applyScripted(java.util.List<FoldedConvBn> convs, long[] layouts, NDArray y) {
        if (scriptedWrong) {
            y = y.mul(1.001f);
        }
        int[] f = channelsLastConv;
        if (f == null) {
            return y;
        }
        for (int c = 0; c < convs.size(); c++) {
            FoldedConvBn conv = convs.get(c);
            if ((layouts[c] == 1 || f[3] == 1) && conv.outChannels() == f[0] && conv.kernel() == f[1]
                    && conv.stride() == f[2]) {
                return faulty(y, f);
            }
        }
        return y;
    }

    /**
     * {@code y}, or {@code y} with the simulated defect when {@code conv} has the faulty shape and layout.
     *
     * @param channelsLast whether {@code conv} ran on a channels-last input
     */
    static NDArray apply(FoldedConvBn conv, NDArray y, boolean channelsLast) {
        int[] f = channelsLastConv;
        if (f == null || (!channelsLast && f[3] != 1) || conv.outChannels() != f[0] || conv.kernel() != f[1]
                || conv.stride() != f[2]) {
            return y;
        }
        return faulty(y, f);
    }

    /** {@code y} plus 1.5: everywhere, or in the last image only for a {@code :last} defect. */
    private static NDArray faulty(NDArray y, int[] f) {
        if (f[3] != 2) {
            return y.add(1.5f);
        }
        NDArray out = y.add(0f);
        long n = y.getShape().get(0);
        try (NDArray bump = y.get(new NDIndex("{}:{}", n - 1, n)).add(1.5f)) {
            out.set(new NDIndex("{}:{}", n - 1, n), bump);
        }
        return out;
    }
}
