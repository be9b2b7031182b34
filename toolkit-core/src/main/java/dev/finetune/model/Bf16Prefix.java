package dev.finetune.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.ParameterStore;
import dev.finetune.engine.Engines;
import dev.finetune.engine.MallocPolicy;
import dev.finetune.engine.Warnings;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The frozen, BN-folded prefix of a {@link ResNet} run in bfloat16 ({@code precision: bf16}): every convolution,
 * max-pool, ReLU and residual add of {@link FoldedPrefix} with bf16 activations and weights in channels-last layout,
 * the output converted back to float32. On a CPU with bf16 instructions (AVX512-BF16, AMX) oneDNN runs these
 * convolutions about twice as fast as float32 ones, at an 8-bit mantissa.
 *
 * <p>Why a TorchScript module: DJL 0.36's PyTorch JNI has no bfloat16 tensor ({@code toType(BFLOAT16)} aborts the
 * process in native code), so the bf16 tensors cannot be NDArrays. {@link FoldedResNetScript} is a small interpreter
 * over a program of ints that {@link FoldedPrefix} records while folding; it takes and returns float32 tensors only, so
 * every bf16 tensor lives and dies inside libtorch. It holds no weights and no model code: the folded weights are
 * passed in each call (and converted there: about 1 % of a 32×224 batch's time for ResNet-50).
 *
 * <p>Like {@link GuardedPrefix}, a guard: the first time it sees an input shape it compares the bf16 output with the
 * plain float32 network's on the same batch; outside {@link #TOLERANCE} (far beyond bf16 rounding: a wrong kernel,
 * as libtorch has had on some CPUs' channels-last paths) it says so once and runs the float32 guarded prefix from then
 * on. Results are then float32's, never silently wrong.
 */
public final class Bf16Prefix implements FrozenPrefix {
    /** Program op: stem (conv, max-pool 3/2/1, ReLU): {@code 0 c stride pad}. */
    static final long OP_STEM = 0;
    /** Program op: residual unit: {@code 1 n down (c stride pad groups)*n [c stride pad]}. */
    static final long OP_UNIT = 1;

    /**
     * The first-batch check's bound on the relative L2 error {@code ||bf16 - plain|| / ||plain||}. bf16 keeps 8
     * significant bits; PyTorch's own bf16 ResNet-50 ({@code model.to(torch.bfloat16)}) is 5-7 % off its float32
     * outputs in relative L2 and up to 8 % of the output's range elementwise on random inputs (Bf16PrefixTest prints
     * both for each input), so an elementwise float32-style bound cannot tell rounding from a defect. 0.15 is twice
     * the worst rounding measured; a defective kernel (the channels-last one off by 1.5 at |y| ≈ 5) is far beyond it.
     */
    public static final double TOLERANCE = 0.15;

    private final ResNet model;
    private final ParameterStore ps;
    private final int toStage;
    private final NDManager manager;
    private final FoldedPrefix folded;
    private final FoldedResNetScript script;
    /** Every convolution on channels-last input. */
    private final long[] layouts;
    private final Set<Shape> verified = new HashSet<>();
    /** Batches run per input shape (for {@link MallocPolicy#afterGuardedBatch}). */
    private final Map<Shape, Integer> batches = new HashMap<>();
    private final List<FastPathReport.Check> checks = new ArrayList<>();
    private final List<String> fallbacks = new ArrayList<>();
    /** The float32 path after a failed check; null while bf16 runs. */
    private GuardedPrefix fallback;

    private Bf16Prefix(ResNet model, ParameterStore ps, int toStage, NDManager manager, FoldedPrefix folded) {
        this.model = model;
        this.ps = ps;
        this.toStage = toStage;
        this.manager = manager;
        this.folded = folded;
        this.script = new FoldedResNetScript(folded, manager);
        this.layouts = new long[folded.convolutions().size()];
        java.util.Arrays.fill(layouts, 1L);
    }

    /**
     * Folds stages {@code [0, toStage)} of {@code model} (all frozen, frozen statistics) for bf16; nothing is checked
     * until the first {@link #forward} or {@link #verify}.
     *
     * @throws IllegalStateException if this CPU has no bf16 instructions ({@link Precision#whyUnavailable})
     */
    public static Bf16Prefix fold(ResNet model, ParameterStore ps, int toStage, NDManager manager) {
        String why = Precision.BF16.whyUnavailable();
        if (why != null) {
            throw new IllegalStateException(why);
        }
        FoldedPrefix f = FoldedPrefix.fold(model, 0, toStage, FoldedPrefix.Layout.CONTIGUOUS, manager);
        try {
            return new Bf16Prefix(model, ps, toStage, manager, f);
        } catch (RuntimeException e) {
            f.close();
            throw e;
        }
    }

    @Override
    public int toStage() {
        return toStage;
    }

    @Override
    public boolean isFolded() {
        return fallback == null || fallback.isFolded();
    }

    /** Whether bf16 still runs (false after the guard fell back to float32). */
    public boolean isBf16() {
        return fallback == null;
    }

    /** The path in use, in words. */
    public String describe() {
        return fallback == null ? "folded, bf16, channels-last" : "float32 " + fallback.describe();
    }

    @Override
    public FastPathReport report() {
        List<FastPathReport.Check> all = new ArrayList<>(checks);
        List<String> falls = new ArrayList<>(fallbacks);
        if (fallback != null) {
            all.addAll(fallback.report().checks());
            falls.addAll(fallback.report().fallbacks());
        }
        return new FastPathReport("folded, bf16, channels-last", describe(), List.copyOf(all), List.copyOf(falls),
                "bf16: ||diff||_2 <= " + TOLERANCE + " * ||plain float32||_2 (max_abs_diff and scale are"
                        + " informative); float32 after a fallback: max|diff| <= " + GuardedPrefix.TOLERANCE
                        + " * max(1, max|plain|)");
    }

    @Override
    public NDArray forward(NDArray x) {
        try (Engines.NoGrad g = Engines.noGrad()) {
            if (fallback != null) {
                return fallback.forward(x);
            }
            NDArray y = verified.contains(x.getShape()) ? bf16(x) : checkedForward(x);
            MallocPolicy.afterGuardedBatch(batches.merge(x.getShape(), 1, Integer::sum));
            return y;
        }
    }

    @Override
    public void verify(Shape shape, NDManager m) {
        if (fallback != null) {
            fallback.verify(shape, m);
            return;
        }
        if (verified.contains(shape)) {
            return;
        }
        try (NDManager scratch = m.newSubManager()) {
            forward(scratch.randomNormal(shape));
        }
    }

    /** The bf16 program on {@code x} (contiguous NCHW float32), unchecked; the output is on {@code x}'s manager. */
    NDArray bf16(NDArray x) {
        return KernelFaults.applyBf16(script.run(x, true, layouts));
    }

    private NDArray checkedForward(NDArray x) {
        NDManager parent = x.getManager();
        try (NDManager scratch = parent.newSubManager()) {
            NDArray input = x.reshape(x.getShape());
            input.attach(scratch);
            NDArray out = bf16(input);
            NDArray ref = GuardedPrefix.reference(model, ps, toStage, input);
            double scale = Math.max(1, ref.abs().max().getFloat());
            NDArray d = out.sub(ref);
            double diff = d.abs().max().getFloat();
            double relativeL2 = Math.sqrt(d.square().sum().getFloat() / ref.square().sum().getFloat());
            boolean ok = relativeL2 <= TOLERANCE; // NaN fails
            checks.add(new FastPathReport.Check(x.getShape(), describe() + String.format(java.util.Locale.ROOT,
                    " (relative L2 error %.3g)", relativeL2), diff, scale, List.of(), ok));
            NDArray result;
            if (ok) {
                verified.add(x.getShape());
                result = out;
            } else {
                String message = "the bf16 prefix differs from the plain float32 network by a relative L2 error of "
                        + FastPathReport.fmt(relativeL2) + " (bound " + TOLERANCE + "; max |diff| "
                        + FastPathReport.fmt(diff) + " at max |output| " + FastPathReport.fmt(scale) + ") on input "
                        + x.getShape() + "; running float32 instead";
                fallbacks.add(message);
                Warnings.warnOnce("fast-path:bf16", message + ". Results are float32's; recorded in run.json.");
                fallback = GuardedPrefix.fold(model, ps, toStage, FoldedPrefix.Layout.CHANNELS_LAST, manager);
                result = ref;
            }
            result.attach(parent);
            return result;
        }
    }

    @Override
    public void close() {
        script.close();
        folded.close();
        if (fallback != null) {
            fallback.close();
        }
    }
}
