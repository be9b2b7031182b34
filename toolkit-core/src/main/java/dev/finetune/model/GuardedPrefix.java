package dev.finetune.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.ParameterStore;
import dev.finetune.engine.Engines;
import dev.finetune.engine.Warnings;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * The frozen prefix of a {@link ResNet} run as fast as is safe on this host: BN-folded and channels-last where the
 * engine computes that correctly, with the plain network as the reference it must equal.
 *
 * <p>Why a guard: a fast path can be wrong on one CPU and right on another. libtorch 2.7.1 on an AMD Zen 5 host
 * computes a 1×1, stride-2, 512-channel convolution wrongly on channels-last input (see {@link KernelFaults}), while
 * the same code is right on Intel hosts. So the first time the prefix sees an input shape (and again after any change
 * of path), {@link #forward} checks it:
 *
 * <ol>
 *   <li>every folded convolution that runs channels-last is also run on NCHW on its real input; a stage with a
 *       convolution outside the tolerance runs NCHW from then on;
 *   <li>the folded prefix's output is compared with the plain network's (unfolded, NCHW, frozen BN using its
 *       statistics) on the same batch; outside the tolerance, the guard falls back to the folded prefix all NCHW, and
 *       then to no folding at all.
 * </ol>
 *
 * <p>What runs once a shape is checked is the folded prefix as one TorchScript call ({@link
 * FoldedPrefix#forwardScripted}: the same convolutions in the same layouts, ReLU and residual add in place), so the
 * check ends with a third step: the scripted output must equal the plain network's too, or the guard runs the folded
 * prefix op by op from then on.
 *
 * <p>Each fallback is said once on standard error ({@link Warnings}) and recorded in {@link #report()}. The check costs
 * about three extra forwards of the prefix per distinct input shape (a training run has two: full and last batch).
 * Tolerance, elementwise: {@code max|diff| <= 1e-4 * max(1, max|plain|)}.
 */
public final class GuardedPrefix implements FrozenPrefix {
    /** Relative tolerance of every check. */
    public static final double TOLERANCE = 1e-4;

    private final ResNet model;
    private final ParameterStore ps;
    private final int toStage;
    private final String requested;
    private FoldedPrefix folded;
    /** Whether checked shapes run as one TorchScript call ({@link FoldedPrefix#forwardScripted}). */
    private boolean scripted = true;
    private final Set<Shape> verified = new HashSet<>();
    private final List<FastPathReport.Check> checks = new ArrayList<>();
    private final List<String> fallbacks = new ArrayList<>();

    private GuardedPrefix(ResNet model, ParameterStore ps, int toStage, FoldedPrefix folded, String requested) {
        this.model = model;
        this.ps = ps;
        this.toStage = toStage;
        this.folded = folded;
        this.requested = requested;
    }

    /**
     * Folds stages {@code [0, toStage)} of {@code model} (all frozen, frozen statistics) in {@code layout}; nothing is
     * checked until the first {@link #forward} or {@link #verify}.
     */
    public static GuardedPrefix fold(ResNet model, ParameterStore ps, int toStage, FoldedPrefix.Layout layout,
            NDManager manager) {
        FoldedPrefix f = FoldedPrefix.fold(model, 0, toStage, layout, manager);
        return new GuardedPrefix(model, ps, toStage, f, "folded, scripted, " + f.describeLayout());
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
        return folded == null ? "plain network (folding switched off by the guard)"
                : "folded, " + (scripted ? "scripted, " : "") + folded.describeLayout();
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
            if (verified.contains(x.getShape())) {
                return scripted ? folded.forwardScripted(x) : folded.forward(x);
            }
            return checkedForward(x);
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

    private NDArray checkedForward(NDArray x) {
        NDManager parent = x.getManager();
        try (NDManager scratch = parent.newSubManager()) {
            NDArray input = x.reshape(x.getShape());
            input.attach(scratch);
            List<FastPathReport.ConvMismatch> mismatches = new ArrayList<>();
            NDArray out = folded.forward(input, checking(mismatches));
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
            NDArray ref = plain(input);
            double scale = Math.max(1, ref.abs().max().getFloat());
            double diff = out.sub(ref).abs().max().getFloat();
            boolean ok = diff <= TOLERANCE * scale;
            checks.add(new FastPathReport.Check(x.getShape(), "folded, op by op, " + folded.describeLayout(), diff,
                    scale, List.copyOf(mismatches), ok));
            if (!ok && folded.anyChannelsLast()) {
                fallback("the folded channels-last prefix differs from the plain network by "
                        + FastPathReport.fmt(diff) + " (max |output| " + FastPathReport.fmt(scale) + ") on input "
                        + x.getShape() + "; running the folded prefix NCHW", "channels-last");
                for (int s = 0; s < toStage; s++) {
                    folded.useContiguous(s);
                }
                out = folded.forward(input);
                diff = out.sub(ref).abs().max().getFloat();
                ok = diff <= TOLERANCE * scale;
                checks.add(new FastPathReport.Check(x.getShape(), "folded, op by op, " + folded.describeLayout(), diff,
                        scale, List.of(), ok));
            }
            if (ok && scripted) {
                NDArray script = folded.forwardScripted(input);
                double scriptDiff = script.sub(ref).abs().max().getFloat();
                boolean scriptOk = scriptDiff <= TOLERANCE * scale;
                checks.add(new FastPathReport.Check(x.getShape(), describe(), scriptDiff, scale, List.of(),
                        scriptOk));
                if (scriptOk) {
                    out = script;
                } else {
                    fallback("the scripted folded prefix differs from the plain network by "
                            + FastPathReport.fmt(scriptDiff) + " (max |output| " + FastPathReport.fmt(scale)
                            + ") on input " + x.getShape() + ", where the same stages op by op do not; running them"
                            + " op by op", "scripted");
                    scripted = false;
                }
            }
            NDArray result;
            if (ok) {
                verified.add(x.getShape());
                result = out;
            } else {
                fallback("the BN-folded prefix differs from the plain network by " + FastPathReport.fmt(diff)
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

    /** Records a fallback, says it once per process and kind, and forgets earlier verdicts (the path changed). */
    private void fallback(String message, String kind) {
        fallbacks.add(message);
        verified.clear();
        Warnings.warnOnce("fast-path:" + kind, message + ". Results are unaffected; recorded in run.json.");
    }

    /** Runs each channels-last convolution on NCHW as well and records those that differ. */
    private static FoldedPrefix.ConvCall checking(List<FastPathReport.ConvMismatch> found) {
        return (conv, x, stage, cl) -> {
            NDArray y = FoldedPrefix.DIRECT.apply(conv, x, stage, cl);
            if (cl) {
                NDArray flat = x.reshape(x.getShape().get(0), -1); // FoldedPrefix.toContiguous, closed at once
                NDArray contiguous = flat.reshape(x.getShape());
                NDArray ref = FoldedPrefix.DIRECT.apply(conv, contiguous, stage, false);
                contiguous.close();
                flat.close();
                // In place on the reference (discarded after): at the stem of a 32x224 batch each map is 103 MB, and
                // abs and sub copies held the first batch's peak memory ~300 MB above the path being checked.
                double scale = Math.max(1, Math.max(ref.max().getFloat(), -ref.min().getFloat()));
                ref.subi(y);
                double diff = Math.max(ref.max().getFloat(), -ref.min().getFloat()); // NaN stays NaN: a mismatch
                if (!(diff <= TOLERANCE * scale)) {
                    found.add(new FastPathReport.ConvMismatch(conv.name(), conv.describeShape(), x.getShape(), diff,
                            scale));
                }
                ref.close();
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
