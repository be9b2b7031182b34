package dev.finetune.engine;

import ai.djl.engine.Engine;
import ai.djl.pytorch.jni.JniUtils;

/**
 * Starting DJL's PyTorch engine the way the toolkit needs it: offline (the native libtorch comes from the
 * {@code pytorch-native-cpu} jar on the classpath, nothing is downloaded) and with grad mode under our control.
 */
public final class Engines {
    private Engines() {}

    /**
     * Starts (once) and returns the PyTorch engine. Sets {@code ai.djl.offline=true} unless the caller chose
     * otherwise, and the intra-op thread count when {@code threads > 0} (it must be set before the engine loads).
     */
    public static synchronized Engine pytorch(int threads) {
        if (System.getProperty("ai.djl.offline") == null) {
            System.setProperty("ai.djl.offline", "true");
        }
        if (threads > 0 && System.getProperty("ai.djl.pytorch.num_threads") == null) {
            System.setProperty("ai.djl.pytorch.num_threads", Integer.toString(threads));
        }
        if (System.getProperty("ai.djl.pytorch.num_interop_threads") == null) {
            System.setProperty("ai.djl.pytorch.num_interop_threads", "1");
        }
        return Engine.getEngine("PyTorch");
    }

    /** Starts the engine with libtorch's default thread count. */
    public static Engine pytorch() {
        return pytorch(0);
    }

    /**
     * Turns autograd off on the calling thread until closed (PyTorch's {@code torch.no_grad()}), restoring the previous
     * state. Grad mode is per thread in libtorch: every thread that runs a forward without wanting a graph must do
     * this itself.
     */
    public static NoGrad noGrad() {
        pytorch();
        boolean before = JniUtils.isGradMode();
        JniUtils.setGradMode(false);
        return new NoGrad(before);
    }

    /**
     * Turns autograd recording on for the calling thread until closed (ops on tensors that require no gradient still
     * record nothing); tests use it to run the plain eager path, which frees nothing early.
     */
    public static NoGrad gradEnabled() {
        pytorch();
        boolean before = JniUtils.isGradMode();
        JniUtils.setGradMode(true);
        return new NoGrad(before);
    }

    /**
     * libtorch's backward from {@code out} with {@code grad} as its gradient, adding to the leaves' gradients (DJL's
     * collector takes a scalar only; {@code out.mul(grad).sum()} gives the same gradients through a temporary the size
     * of {@code out}). Autograd must have recorded {@code out}.
     */
    public static void backward(ai.djl.ndarray.NDArray out, ai.djl.ndarray.NDArray grad) {
        JniUtils.backward((ai.djl.pytorch.engine.PtNDArray) out, (ai.djl.pytorch.engine.PtNDArray) grad, false, false);
    }

    /** Whether autograd records on the calling thread. */
    public static boolean isGradEnabled() {
        pytorch();
        return JniUtils.isGradMode();
    }

    /** Restores grad mode when closed. */
    public static final class NoGrad implements AutoCloseable {
        private final boolean before;

        private NoGrad(boolean before) {
            this.before = before;
        }

        @Override
        public void close() {
            JniUtils.setGradMode(before);
        }
    }
}
