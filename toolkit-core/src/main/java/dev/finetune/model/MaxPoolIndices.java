package dev.finetune.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.pooling.Pool;
import ai.djl.pytorch.engine.PtSymbolBlock;
import ai.djl.pytorch.jni.JniUtils;
import ai.djl.training.ParameterStore;
import dev.finetune.engine.Engines;
import dev.finetune.engine.Warnings;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * A 2-D max pool for training steps: libtorch's channels-last pool picks each window's maximum, and the values are
 * gathered from the NCHW input with autograd on. Used for a contiguous NCHW float32 input in grad mode (training: the
 * ResNet and DenseNet stems, VGG's pools); elsewhere libtorch's own pool.
 *
 * <p>Why: libtorch 2.7.1's max pool with indices on contiguous NCHW input is a scalar loop per plane: in a ResNet-18
 * full step on a 2-core AMD EPYC it took 120 ms of ~2,100 at 32×224 (the stem's [32, 64, 112, 112]) and 37 of ~700 at
 * 128×64, where PyTorch 1.13 takes 27; its channels-last kernel is vectorized over channels. Here the pool's ops (the
 * channels-last copies, that pool, the indices' copy back, the gather and its backward) take 41 and ~32 ms per step
 * (libtorch profiler, {@code finetune bench --profile}). DJL 0.36's JNI has no max pool with indices, hence
 * {@code max_pool_indices.pt} (made by {@code scripts/torchscript/make_max_pool_indices.py}), which pools a few images
 * at a time ({@link #chunk}) and gathers with {@code index_select} on the flattened input, whose backward keeps the
 * indices only (max_pool2d's and gather's keep the whole input as well).
 *
 * <p>Equal, not close: every output is the input element at its index, so the values are the pool's bit for bit when
 * the indices are, and so is the gradient's routing. The indices are flat positions in each H × W plane whatever the
 * memory format, and both kernels scan a window row by row keeping the first maximum (the last NaN): the same indices.
 * A kernel can be wrong on one host and right on another (issue #8), so this host is checked: the first pool of every
 * input shape and window, and every {@value #CHECK_EVERY}th one, also runs the NCHW kernel and compares the indices
 * exactly. A mismatch switches this path off for the process (libtorch's NCHW pool from then on), warns once
 * ({@link Warnings}, as the other fast-path guards) and is kept in {@link #report()}, which
 * {@code FineTuner.fastPathReports} (so {@code run.json}) carries then. Memory: the pool's input is not kept for the
 * backward (at 32×224 the stem's 103 MB BatchNorm output is freed after the pool).
 *
 * <p>{@code -Dfinetune.max_pool.gather=false} turns it off (libtorch's pool everywhere), for side-by-side timings.
 */
public final class MaxPoolIndices {
    /** The system property that turns this path off ({@code false}). */
    public static final String PROPERTY = "finetune.max_pool.gather";
    /** A re-check every this many pools (besides the first of each input shape and window). */
    static final long CHECK_EVERY = 500;
    private static final String RESOURCE = "max_pool_indices.pt";
    /** The input bytes per channels-last copy ({@link #chunk}). */
    static final long CHUNK_BYTES = 8L << 20;

    private static final boolean ENABLED = !"false".equalsIgnoreCase(System.getProperty(PROPERTY, "true"));
    private static NDManager owner;
    private static PtSymbolBlock module;
    private static final Set<List<Long>> VERIFIED = new HashSet<>();
    private static final List<FastPathReport.Check> CHECKS = new ArrayList<>();
    private static final List<String> FALLBACKS = new ArrayList<>();
    private static long pools;
    /** Where in {@link #CHECKS} the latest passed re-check of a known shape sits (-1: none): each replaces it. */
    private static int lastRecheck = -1;
    private static volatile boolean failed;

    private MaxPoolIndices() {}

    /**
     * {@code max_pool2d(x, kernel, stride, padding)} (square windows, no dilation, floor mode), on this path where it
     * applies, else libtorch's pool.
     */
    public static NDArray maxPool2d(NDArray x, int kernel, int stride, int padding) {
        if (applies(x)) {
            NDList pooled = run(x, kernel, stride, padding, true);
            if (pooled != null) {
                NDArray out = pooled.get(0);
                if (checked(x, kernel, stride, padding, pooled.get(1))) {
                    pooled.get(1).close();
                    return out;
                }
                pooled.close();
            }
        }
        return Pool.maxPool2d(x, new Shape(kernel, kernel), new Shape(stride, stride), new Shape(padding, padding),
                false);
    }

    /** What this host's checks found, or null before the first one. */
    public static synchronized FastPathReport report() {
        if (CHECKS.isEmpty()) {
            return null;
        }
        return new FastPathReport("max pool: channels-last kernel's indices, values gathered from NCHW",
                failed ? "max pool: libtorch's NCHW kernel" : "max pool: channels-last kernel's indices",
                List.copyOf(CHECKS), List.copyOf(FALLBACKS), "indices equal to the NCHW kernel's, element for element"
                        + " (a check's max_abs_diff counts the differing indices, its scale the outputs)");
    }

    /**
     * Images per channels-last copy: about {@value #CHUNK_BYTES} bytes of input (2 images of a ResNet stem at 224), so
     * that the copy is a few MB rather than another map of the batch's size (103 MB at 32x224).
     */
    static long chunk(Shape s) {
        long perImage = s.size() / s.get(0) * Float.BYTES;
        return Math.max(1, CHUNK_BYTES / Math.max(1, perImage));
    }

    /** Clears the checks, the fallback and the count (tests). */
    static synchronized void reset() {
        VERIFIED.clear();
        CHECKS.clear();
        FALLBACKS.clear();
        pools = 0;
        lastRecheck = -1;
        failed = false;
    }

    private static boolean applies(NDArray x) {
        // Grad mode, not the input's requires_grad: DJL's JniUtils.requiresGrad is false for every non-leaf tensor (a
        // convolution's output too). The toolkit runs what needs no graph (inference, frozen stages) without grad mode.
        return ENABLED && !failed && x.getDataType() == DataType.FLOAT32 && x.getShape().dimension() == 4
                && Engines.isGradEnabled();
    }

    /**
     * With {@code channelsLast}: the pooled values, gathered from {@code x} with autograd, and the indices they were
     * gathered at (flat positions in {@code x}); null when {@code x} is not contiguous NCHW (libtorch's pool is fast on
     * it). Without: the NCHW kernel's indices alone (no values), for the check.
     */
    private static NDList run(NDArray x, int kernel, int stride, int padding, boolean channelsLast) {
        NDManager m = x.getManager();
        // An unnamed view of x: DJL turns an input's name into the argument's kind (a dotted name makes a dict entry).
        try (NDArray view = x.reshape(x.getShape());
                NDArray spec = m.create(new long[] {kernel, stride, padding, channelsLast ? 1 : 0,
                        chunk(x.getShape()), channelsLast && KernelFaults.maxPoolIndicesWrong() ? 1 : 0})) {
            // The graph executor's optimizer (on by default, per thread) would profile the first calls and may then
            // run a rewritten graph; off, every call runs the same ops (as FoldedResNetScript).
            JniUtils.setGraphExecutorOptimize(false);
            // Training on: DJL's only way to run a TorchScript method outside inference mode, so that autograd records
            // the index_select and may save the indices (the pool itself runs on a detached x).
            NDList out = module(m).forward(new ParameterStore(m, false), new NDList(view, spec), true);
            out.attach(m);
            if (out.get(1).getShape().dimension() != 4) {
                out.close();
                return null;
            }
            return out;
        }
    }

    /**
     * Whether {@code indices} may be used: unchecked shapes and every {@value #CHECK_EVERY}th pool compare them with
     * the NCHW kernel's; a difference switches the path off.
     */
    private static boolean checked(NDArray x, int kernel, int stride, int padding, NDArray indices) {
        List<Long> key = new ArrayList<>();
        for (long d : x.getShape().getShape()) {
            key.add(d);
        }
        key.addAll(List.of((long) kernel, (long) stride, (long) padding));
        synchronized (MaxPoolIndices.class) {
            pools++;
            if (VERIFIED.contains(key) && pools % CHECK_EVERY != 0) {
                return true;
            }
        }
        NDList nchw = run(x, kernel, stride, padding, false);
        NDArray reference = nchw.get(1);
        boolean same = reference.contentEquals(indices);
        long differing = same ? 0 : reference.neq(indices).countNonzero().getLong();
        nchw.close();
        String window = kernel + "x" + kernel + " stride " + stride + " padding " + padding;
        synchronized (MaxPoolIndices.class) {
            FastPathReport.Check check = new FastPathReport.Check(x.getShape(), "max pool " + window
                    + ", channels-last indices", differing, indices.size(), List.of(), same);
            if (same && VERIFIED.contains(key) && lastRecheck >= 0) {
                CHECKS.set(lastRecheck, check); // a long run's re-checks do not pile up
            } else {
                CHECKS.add(check);
                if (same && VERIFIED.contains(key)) {
                    lastRecheck = CHECKS.size() - 1;
                }
            }
            if (same) {
                VERIFIED.add(key);
                return true;
            }
            if (!failed) {
                failed = true;
                String why = "the channels-last max pool's indices differ from the NCHW pool's at " + differing + " of "
                        + indices.size() + " outputs (" + window + ", input " + x.getShape() + ") on this host:"
                        + " max pools run libtorch's NCHW kernel from now on (same results, slower)";
                FALLBACKS.add(why);
                Warnings.warnOnce("fast-path:max-pool", why + ". Recorded in run.json.");
            }
            return false;
        }
    }

    private static synchronized PtSymbolBlock module(NDManager any) {
        if (module == null) {
            // One small module for the process (a few kB), owned by its own manager: pools run on many batches' managers.
            owner = NDManager.newBaseManager(any.getDevice(), "PyTorch");
            module = Engines.loadScript(MaxPoolIndices.class, RESOURCE, owner);
        }
        return module;
    }
}
