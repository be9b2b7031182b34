package dev.finetune.optim;

import ai.djl.ndarray.NDManager;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.engine.PtNDManager;
import ai.djl.pytorch.engine.PtSymbolBlock;
import ai.djl.pytorch.jni.IValue;
import ai.djl.pytorch.jni.JniUtils;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;

/**
 * PyTorch's SGD update over all of an optimizer's parameters in one TorchScript call: {@code sgd_step.pt}, made by
 * {@code scripts/torchscript/make_sgd_step.py} from {@code torch.optim.SGD}'s single-tensor loop, holding no state
 * (parameters, gradients and momentum buffers are arguments, updated in place; the gradients are zeroed).
 *
 * <p>Why not NDArray ops: DJL 0.36's JNI has no {@code add(other, alpha)}, so each of weight decay, Nesterov momentum
 * and the learning rate costs the NDArray version a separate multiplication with a parameter-sized temporary — 8
 * passes over every parameter and 5 allocations where PyTorch makes 5 and 2 — and about eight JNI calls per
 * parameter. ATen's {@code add} with {@code alpha} computes the same product-then-sum, so both versions give PyTorch's
 * result ({@code GroupedOptimizerParityTest} runs both against {@code torch.optim.SGD}).
 */
final class SgdStepScript implements AutoCloseable {
    private static final String RESOURCE = "sgd_step.pt";

    private final PtSymbolBlock module;

    SgdStepScript(NDManager manager) {
        try (InputStream in = SgdStepScript.class.getResourceAsStream(RESOURCE)) {
            if (in == null) {
                throw new IllegalStateException("missing resource " + RESOURCE + " (a broken build)");
            }
            module = JniUtils.loadModule((PtNDManager) manager, in, false, false);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot load " + RESOURCE, e);
        }
    }

    /**
     * One update of every parameter, then its gradient zeroed.
     *
     * @param params the parameters, updated in place
     * @param grads their gradients, zeroed
     * @param bufs their momentum buffers (none when momentum is 0), updated in place
     * @param first per parameter: its buffer is filled from this update (torch.optim.SGD's first step) instead of
     *     decayed and added to
     * @param lrs per-parameter learning rates
     * @param wds per-parameter weight decays
     */
    void step(PtNDArray[] params, PtNDArray[] grads, PtNDArray[] bufs, boolean[] first, double[] lrs, double[] wds,
            double momentum, double dampening, boolean nesterov) {
        // The graph executor's optimizer (on by default, per thread) could profile the first calls and run a rewritten
        // graph later; off, every call runs the same ops (as FoldedResNetScript does).
        JniUtils.setGraphExecutorOptimize(false);
        try (IValue p = IValue.listFrom(params);
                IValue g = IValue.listFrom(grads);
                IValue b = IValue.listFrom(bufs);
                IValue f = IValue.listFrom(first);
                IValue lr = IValue.listFrom(lrs);
                IValue wd = IValue.listFrom(wds);
                IValue m = IValue.from(momentum);
                IValue d = IValue.from(dampening);
                IValue n = IValue.from(nesterov);
                IValue out = module.forward(p, g, b, f, lr, wd, m, d, n)) {
            long updated = out.toLong();
            if (updated != params.length) {
                throw new IllegalStateException(RESOURCE + " updated " + updated + " of " + params.length
                        + " parameters");
            }
        }
    }

    @Override
    public void close() {
        module.close();
    }
}
