package dev.finetune.optim;

import ai.djl.ndarray.NDManager;
import ai.djl.pytorch.engine.PtSymbolBlock;
import ai.djl.pytorch.jni.IValue;
import ai.djl.pytorch.jni.JniUtils;
import dev.finetune.engine.Engines;

/**
 * An optimizer's update over all of its parameters in one TorchScript call: {@code sgd_step.pt} (torch.optim.SGD) or
 * {@code adam_step.pt} (torch.optim.Adam and AdamW), made by {@code scripts/torchscript/make_optimizer_steps.py} from
 * torch's single-tensor loops. The modules hold no state: parameters, gradients and buffers are arguments, updated in
 * place, and the gradients are zeroed.
 *
 * <p>Why not NDArray ops: DJL 0.36's JNI has no {@code add(other, alpha)}, {@code addcmul_} or {@code addcdiv_}, so
 * every scaled term costs the NDArray version a separate multiplication and a parameter-sized temporary — SGD with
 * weight decay and Nesterov momentum makes 8 passes over every parameter and 5 allocations where PyTorch makes 5 and 2,
 * Adam about 14 passes where PyTorch makes 9 — and several JNI calls per parameter. {@link GroupedOptimizer} keeps
 * the NDArray versions as the reference ({@code ScriptedUpdateTest}); both match torch.optim
 * ({@code GroupedOptimizerParityTest}).
 *
 * <p>{@code ema_step.pt} does the same for the weight EMA ({@code dev.finetune.train.WeightEma}): its update after
 * every step, and the exchange of averages and weights around the EMA's validation and checkpoint.
 */
public final class ScriptedUpdate implements AutoCloseable {
    private final String resource;
    private final PtSymbolBlock module;

    private ScriptedUpdate(String resource, NDManager manager) {
        this.resource = resource;
        module = Engines.loadScript(ScriptedUpdate.class, resource, manager);
    }

    /** torch.optim.SGD's update: (params, grads, bufs, first, lrs, wds, momentum, dampening, nesterov). */
    static ScriptedUpdate sgd(NDManager manager) {
        return new ScriptedUpdate("sgd_step.pt", manager);
    }

    /** torch.optim.Adam's and AdamW's: (params, grads, exp_avgs, exp_avg_sqs, steps, lrs, wds, b1, b2, eps, decoupled). */
    static ScriptedUpdate adam(NDManager manager) {
        return new ScriptedUpdate("adam_step.pt", manager);
    }

    /**
     * The weight EMA's ({@code dev.finetune.train.WeightEma}): (averages, tensors, decay, swap) — without swap
     * {@code average = decay·average + (1 − decay)·tensor} in timm's ModelEmaV2 order of operations, with swap the two
     * lists exchange their values in place.
     */
    public static ScriptedUpdate ema(NDManager manager) {
        return new ScriptedUpdate("ema_step.pt", manager);
    }

    /**
     * Runs the update on {@code args} (the module's arguments, in its order; closed here) and checks it updated
     * {@code parameters} parameters.
     */
    public void run(int parameters, IValue... args) {
        // The graph executor's optimizer (on by default, per thread) could profile the first calls and run a rewritten
        // graph later; off, every call runs the same ops (as FoldedResNetScript does).
        JniUtils.setGraphExecutorOptimize(false);
        try (IValue out = module.forward(args)) {
            long updated = out.toLong();
            if (updated != parameters) {
                throw new IllegalStateException(resource + " updated " + updated + " of " + parameters
                        + " parameters");
            }
        } finally {
            for (IValue a : args) {
                a.close();
            }
        }
    }

    @Override
    public void close() {
        module.close();
    }
}
