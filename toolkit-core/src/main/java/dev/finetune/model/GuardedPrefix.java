package dev.finetune.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
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
 * The frozen prefix of a {@link ResNet} run as fast as is safe on this host: BN-folded and channels-last where the
 * engine computes that correctly, with the plain network as the reference it must equal.
 *
 * <p>Why a guard: a fast path can be wrong on one CPU and right on another. libtorch 2.7.1 on an AMD Zen 5 host
 * computes a 1×1, stride-2, 512-channel convolution wrongly on channels-last input (see {@link KernelFaults}), while
 * the same code is right on Intel hosts. So the first time the prefix sees an input shape (and again after any change
 * of path), {@link #forward} checks it against the plain network (unfolded, NCHW, frozen BN using its statistics) on
 * the same batch — computed a few images at a time, so the check does not hold two full-batch forwards at once:
 *
 * <ol>
 *   <li>the path that will run: the folded prefix as one TorchScript call ({@link FoldedPrefix#forwardScripted}: the
 *       same convolutions in the same layouts as op by op, ReLU and residual add in place, each intermediate freed the
 *       moment it is dead). Within the tolerance, that is all;
 *   <li>otherwise, a diagnosis op by op: every folded convolution that runs channels-last is also run on NCHW on its
 *       real input, and a stage with a convolution outside the tolerance runs NCHW from then on; the op-by-op output
 *       is compared with the plain network's; outside the tolerance, the guard falls back to the folded prefix all
 *       NCHW, and then to no folding at all;
 *   <li>if the op-by-op path passes, the scripted call is checked again in the corrected layouts; if it still differs,
 *       the folded prefix runs op by op from then on.
 * </ol>
 *
 * <p>Each fallback is said once on standard error ({@link Warnings}) and recorded in {@link #report()}. On a host where
 * the fast path is right the check costs one extra forward of the prefix per distinct input shape (a training run has
 * two: full and last batch).
 * Tolerance, elementwise: {@code max|diff| <= 1e-4 * max(1, max|plain|)}.
 *
 * <p>Small inputs can run all NCHW over the same folded weights ({@link #contiguousBelow}): channels-last's layout
 * changes cost more than its convolutions gain on little work. The layout then depends on the input shape, and so
 * does the check, which is per shape anyway.
 */
public final class GuardedPrefix implements FrozenPrefix {
    /**
     * System property: {@code -Dfinetune.folded.scripted=false} runs checked shapes op by op instead of as one
     * TorchScript call (the path before the scripted one existed): for benchmarks side by side, and to rule the
     * scripted path out when chasing a difference.
     */
    public static final String SCRIPTED_PROPERTY = "finetune.folded.scripted";

    /** Images per piece of the check's plain reference ({@link #reference}). */
    private static final long REFERENCE_CHUNK = 8;
    /** Output bytes per chunk of the op-by-op check's NCHW run of a channels-last convolution ({@link #checking}). */
    static final long CHECK_CHUNK_BYTES = 8L << 20;

    /**
     * Below this many input pixels per batch (N·H·W), a ResNet's folded prefix runs best in NCHW rather than
     * channels-last ({@link #contiguousBelow}): channels-last's layout changes cost more than its convolutions gain on
     * little work. Measured on this project's AMD host (ResNet-18, the scripted prefix, ms per call channels-last /
     * NCHW): 2×32² 12.4 / 5.9, 1×112² 14.4 / 11.7, 64×32² 36.5 / 32.4, 8×96² 36 / 34, 16×64² 36–49 / 35–39; and above
     * it 256×32² 107 / 117, 128×64² 222–255 / 278, 32×224² 675 / 997. Only speed depends on it: both layouts are
     * checked against the plain network.
     */
    public static final long SMALL_INPUT_PIXELS = 1L << 17;

    /** Relative tolerance of every check. */
    public static final double TOLERANCE = 1e-4;

    private final ResNet model;
    private final ParameterStore ps;
    private final int toStage;
    /** The path asked for, in words (what {@link #describe} said before any check). */
    private final String requested;
    private FoldedPrefix folded;
    /** Whether checked shapes run as one TorchScript call ({@link FoldedPrefix#forwardScripted}). */
    private boolean scripted = !"false".equals(System.getProperty(SCRIPTED_PROPERTY));
    private final Set<Shape> verified = new HashSet<>();
    /** Batches run per input shape (for {@link MallocPolicy#afterGuardedBatch}). */
    private final Map<Shape, Integer> batches = new HashMap<>();
    /** Inputs with fewer pixels than this (N·H·W) run all NCHW; 0: none. */
    private long contiguousBelowPixels;
    private final List<FastPathReport.Check> checks = new ArrayList<>();
    private final List<String> fallbacks = new ArrayList<>();

    private GuardedPrefix(ResNet model, ParameterStore ps, int toStage, FoldedPrefix folded) {
        this.model = model;
        this.ps = ps;
        this.toStage = toStage;
        this.folded = folded;
        this.requested = describe();
    }

    /**
     * Folds stages {@code [0, toStage)} of {@code model} (all frozen, frozen statistics) in {@code layout}; nothing is
     * checked until the first {@link #forward} or {@link #verify}.
     */
    public static GuardedPrefix fold(ResNet model, ParameterStore ps, int toStage, FoldedPrefix.Layout layout,
            NDManager manager) {
        FoldedPrefix f = FoldedPrefix.fold(model, 0, toStage, layout, manager);
        return new GuardedPrefix(model, ps, toStage, f);
    }

    /**
     * Runs inputs of fewer than {@code pixels} (N·H·W) all in contiguous NCHW, larger ones in the folded layout; call
     * before the first {@link #forward}.
     */
    public GuardedPrefix contiguousBelow(long pixels) {
        if (!checks.isEmpty()) {
            throw new IllegalStateException("set the small-input layout before the first batch");
        }
        contiguousBelowPixels = pixels;
        return this;
    }

    private boolean contiguousFor(Shape s) {
        return s.dimension() == 4 && s.get(0) * s.get(2) * s.get(3) < contiguousBelowPixels;
    }

    /** The stage index the output enters at. */
    public int toStage() {
        return toStage;
    }

    /** Whether the prefix still runs folded (false after the last fallback). */
    public boolean isFolded() {
        return folded != null;
    }

    /** The path in use, in words. */
    public String describe() {
        if (folded == null) {
            return "plain network (folding switched off by the guard)";
        }
        return describe(false) + (contiguousBelowPixels > 0 && folded.anyChannelsLast()
                ? " (NCHW throughout below " + contiguousBelowPixels + " input pixels, N·H·W)" : "");
    }

    /** The path of a call with {@code contiguousOnly}, in words. */
    private String describe(boolean contiguousOnly) {
        return "folded, " + (scripted ? "scripted, " : "") + folded.describeLayout(contiguousOnly);
    }

    /** What was checked and decided so far. */
    public FastPathReport report() {
        return new FastPathReport(requested, describe(), List.copyOf(checks), List.copyOf(fallbacks));
    }

    /**
     * The output of stages {@code [0, toStage)} for contiguous NCHW {@code x}, with no autograd; on {@code x}'s
     * manager. Checked against the plain network the first time this input shape is seen.
     */
    public NDArray forward(NDArray x) {
        try (Engines.NoGrad g = Engines.noGrad()) {
            if (folded == null) {
                return plain(x);
            }
            NDArray y;
            if (verified.contains(x.getShape())) {
                boolean nchw = contiguousFor(x.getShape());
                y = scripted ? folded.forwardScripted(x, nchw) : folded.forward(x, FoldedPrefix.DIRECT, nchw);
            } else {
                y = checkedForward(x);
            }
            MallocPolicy.afterGuardedBatch(batches.merge(x.getShape(), 1, Integer::sum));
            return y;
        }
    }

    /** Checks the path now on a random batch of {@code shape} (N, 3, H, W), so a report exists before training. */
    public void verify(Shape shape, NDManager manager) {
        if (folded == null || verified.contains(shape)) {
            return;
        }
        try (NDManager m = manager.newSubManager()) {
            NDArray probe = m.randomNormal(shape);
            forward(probe);
        }
    }

    private NDArray plain(NDArray x) {
        return model.forwardStages(ps, new NDList(x), true, 0, toStage).singletonOrThrow();
    }

    /**
     * The plain network's output as the check's reference, a few images at a time: with frozen statistics every image
     * is computed alone, so this equals {@link #plain} on the whole batch, at a fraction of its peak memory (the first
     * batch would otherwise hold the folded path's and the plain path's largest maps at once).
     */
    private NDArray reference(NDArray x) {
        return reference(model, ps, toStage, x);
    }

    /** Stages {@code [0, toStage)} of the plain network on {@code x}, a few images at a time (see above). */
    static NDArray reference(ResNet model, ParameterStore ps, int toStage, NDArray x) {
        long n = x.getShape().get(0);
        if (n <= REFERENCE_CHUNK) {
            return model.forwardStages(ps, new NDList(x), true, 0, toStage).singletonOrThrow();
        }
        NDList parts = new NDList();
        for (long from = 0; from < n; from += REFERENCE_CHUNK) {
            try (NDManager chunk = x.getManager().newSubManager()) {
                NDArray part = ResNet.rows(x, from, REFERENCE_CHUNK);
                part.attach(chunk);
                NDArray y = model.forwardStages(ps, new NDList(part), true, 0, toStage).singletonOrThrow();
                y.attach(x.getManager());
                parts.add(y);
            }
        }
        return NDArrays.concat(parts);
    }

    private NDArray checkedForward(NDArray x) {
        NDManager parent = x.getManager();
        try (NDManager scratch = parent.newSubManager()) {
            NDArray input = x.reshape(x.getShape());
            input.attach(scratch);
            boolean nchw = contiguousFor(x.getShape());
            // The fast path runs before the reference: its whole-batch maps are the largest blocks either makes, and
            // the reference's smaller per-chunk maps then fit where they were. The other order left the heap holding
            // both (evaluate's and predict's malloc settings never return freed memory to the OS).
            NDArray out = scripted ? folded.forwardScripted(input, nchw) : null;
            NDArray ref = reference(input);
            double scale = Math.max(1, ref.abs().max().getFloat());
            boolean ok = false;
            if (scripted) {
                ok = check(x.getShape(), describe(nchw), out, ref, scale, List.of());
            }
            if (!ok) {
                // Op by op, each channels-last convolution also run NCHW: finds a wrong kernel, and tells a wrong
                // scripted call from a wrong folding.
                List<FastPathReport.ConvMismatch> mismatches = new ArrayList<>();
                out = folded.forward(input, checking(mismatches), nchw);
                if (!mismatches.isEmpty()) {
                    for (FoldedConvBn conv : folded.convolutions()) {
                        for (FastPathReport.ConvMismatch mm : mismatches) {
                            if (mm.conv().equals(conv.name())) {
                                folded.useContiguous(stageOf(conv.name()));
                            }
                        }
                    }
                    String msg = "libtorch's channels-last convolution is wrong on this CPU: " + mismatches.get(0)
                            + (mismatches.size() > 1 ? " (and " + (mismatches.size() - 1) + " more)" : "")
                            + "; running those stages NCHW (" + folded.describeLayout() + ")";
                    fallback(msg, "channels-last");
                    out = folded.forward(input);
                }
                ok = check(x.getShape(), "folded, op by op, " + folded.describeLayout(nchw), out, ref, scale,
                        mismatches);
                if (!ok && !nchw && folded.anyChannelsLast()) {
                    fallback("the folded channels-last prefix differs from the plain network by "
                            + FastPathReport.fmt(lastDiff()) + " (max |output| " + FastPathReport.fmt(scale)
                            + ") on input " + x.getShape() + "; running the folded prefix NCHW", "channels-last");
                    for (int s = 0; s < toStage; s++) {
                        folded.useContiguous(s);
                    }
                    out = folded.forward(input);
                    ok = check(x.getShape(), "folded, op by op, " + folded.describeLayout(), out, ref, scale,
                            List.of());
                }
                if (ok && scripted) {
                    NDArray script = folded.forwardScripted(input, nchw);
                    if (check(x.getShape(), describe(nchw), script, ref, scale, List.of())) {
                        out = script;
                    } else {
                        fallback("the scripted folded prefix differs from the plain network by "
                                + FastPathReport.fmt(lastDiff()) + " (max |output| " + FastPathReport.fmt(scale)
                                + ") on input " + x.getShape() + ", where the same stages op by op do not; running"
                                + " them op by op", "scripted");
                        scripted = false;
                    }
                }
            }
            NDArray result;
            if (ok) {
                verified.add(x.getShape());
                result = out;
            } else {
                fallback("the BN-folded prefix differs from the plain network by " + FastPathReport.fmt(lastDiff())
                        + " (max |output| " + FastPathReport.fmt(scale) + ") on input " + x.getShape()
                        + "; folding is switched off", "folding");
                folded.close();
                folded = null;
                result = ref;
            }
            result.attach(parent);
            return result;
        }
    }

    /** Compares {@code out} with the reference, records the check, and says whether it passed. */
    private boolean check(Shape input, String path, NDArray out, NDArray ref, double scale,
            List<FastPathReport.ConvMismatch> mismatches) {
        double diff = out.sub(ref).abs().max().getFloat();
        boolean ok = diff <= TOLERANCE * scale; // NaN fails
        checks.add(new FastPathReport.Check(input, path, diff, scale, List.copyOf(mismatches), ok));
        return ok;
    }

    private double lastDiff() {
        return checks.get(checks.size() - 1).maxAbsDiff();
    }

    /** Records a fallback, says it once per process and kind, and forgets earlier verdicts (the path changed). */
    private void fallback(String message, String kind) {
        fallbacks.add(message);
        verified.clear();
        Warnings.warnOnce("fast-path:" + kind, message + ". Results are unaffected; recorded in run.json.");
    }

    /**
     * Runs each channels-last convolution on NCHW as well and records those that differ. The NCHW run goes a few
     * images at a time ({@link #CHECK_CHUNK_BYTES} of output each): a convolution is per image, so each chunk is the
     * whole-batch result's slice, and the check then holds the path's own output plus one chunk's copy and result
     * instead of a second full map (at the stem of a 32×224 batch 103 MB, and 19 MB for the NCHW copy of its input).
     */
    private static FoldedPrefix.ConvCall checking(List<FastPathReport.ConvMismatch> found) {
        return (conv, x, stage, cl) -> {
            NDArray y = FoldedPrefix.DIRECT.apply(conv, x, stage, cl);
            if (cl) {
                long n = x.getShape().get(0);
                long perImage = Math.max(1, y.getShape().size() / Math.max(1, n) * Float.BYTES);
                long chunk = Math.max(1, Math.min(n, CHECK_CHUNK_BYTES / perImage));
                double scale = 1;
                double diff = 0;
                for (long from = 0; from < n; from += chunk) {
                    try (NDManager m = x.getManager().newSubManager()) {
                        NDArray part = ResNet.rows(x, from, chunk); // a view; what is made from it lands on m
                        part.attach(m);
                        NDArray ref = FoldedPrefix.DIRECT.apply(conv, FoldedPrefix.toContiguous(part), stage, false);
                        ref.attach(m);
                        NDArray mine = ResNet.rows(y, from, chunk);
                        mine.attach(m);
                        // In place on the reference (discarded after): abs and sub copies would hold two more maps.
                        scale = Math.max(scale, Math.max(ref.max().getFloat(), -ref.min().getFloat()));
                        ref.subi(mine);
                        double d = Math.max(ref.max().getFloat(), -ref.min().getFloat());
                        diff = Double.isNaN(d) || Double.isNaN(diff) ? Double.NaN : Math.max(diff, d);
                    }
                }
                if (!(diff <= TOLERANCE * scale)) { // NaN stays NaN: a mismatch
                    found.add(new FastPathReport.ConvMismatch(conv.name(), conv.describeShape(), x.getShape(), diff,
                            scale));
                }
            }
            return y;
        };
    }

    private int stageOf(String moduleName) {
        return model.stageIndexOf(moduleName);
    }

    @Override
    public void close() {
        if (folded != null) {
            folded.close();
            folded = null;
        }
    }
}
