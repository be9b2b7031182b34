package dev.finetune.optim;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.nn.Parameter;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.jni.IValue;
import ai.djl.pytorch.jni.JniUtils;
import dev.finetune.ConfigException;
import dev.finetune.ErrorKind;
import dev.finetune.FinetuneException;
import dev.finetune.checkpoint.HostTensor;
import dev.finetune.checkpoint.TensorEntry;
import dev.finetune.engine.Engines;
import dev.finetune.policy.FreezePlan;
import dev.finetune.policy.NamePattern;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * SGD (momentum, Nesterov), Adam and AdamW over exactly the trainable parameters, with parameter groups.
 *
 * <p>Why not DJL's {@code Optimizer}: it has one global weight decay, no parameter groups, a global step count for
 * Adam's bias correction and no way to export its state. This one follows {@code torch.optim} step for step (same
 * update order, per-parameter step counts, L2 for SGD/Adam, decoupled decay for AdamW) so results match PyTorch's.
 * Frozen parameters are never in it: no state, no decay, no update.
 */
public final class GroupedOptimizer implements AutoCloseable {
    /**
     * System property: {@code -Dfinetune.optimizer.scripted=false} runs the update op by op with NDArrays instead of as
     * one TorchScript call ({@link ScriptedUpdate}): for benchmarks side by side, and to rule the scripted path out
     * when chasing a difference.
     */
    public static final String SCRIPTED_PROPERTY = "finetune.optimizer.scripted";

    private final OptimizerSettings settings;
    private final List<ParamSlot> slots;
    private final NDManager stateManager;
    private final Map<String, NDArray> buf1 = new LinkedHashMap<>();
    private final Map<String, NDArray> buf2 = new LinkedHashMap<>();
    private final Map<String, Long> steps = new LinkedHashMap<>();
    /** The update as one TorchScript call (loaded at the first step); null for the NDArray version. */
    private ScriptedUpdate script;
    private boolean scripted;

    private GroupedOptimizer(OptimizerSettings settings, List<ParamSlot> slots, NDManager parent) {
        this.settings = settings;
        this.slots = List.copyOf(slots);
        this.stateManager = parent.newSubManager();
        this.scripted = !"false".equals(System.getProperty(SCRIPTED_PROPERTY));
    }

    /**
     * Whether updates run as one TorchScript call ({@link ScriptedUpdate}, the default) or op by op with NDArrays (the
     * reference the differential test compares it with). Both follow torch.optim.
     */
    GroupedOptimizer scripted(boolean on) {
        scripted = on;
        return this;
    }

    /**
     * Builds the optimizer over the parameters {@code plan} marks trainable. A group pattern that matches no
     * parameter of the model is a config error.
     */
    public static GroupedOptimizer build(
            OptimizerSettings settings, Map<String, Parameter> tensors, FreezePlan plan, NDManager manager) {
        return build(settings, tensors, plan, List.of(), manager);
    }

    /**
     * {@link #build(OptimizerSettings, Map, FreezePlan, NDManager)} with groups added while training (gradual
     * unfreezing): a parameter in an added group takes that group's learning-rate multiplier; a later added group
     * wins over an earlier one.
     */
    public static GroupedOptimizer build(OptimizerSettings settings, Map<String, Parameter> tensors, FreezePlan plan,
            List<AddedGroup> added, NDManager manager) {
        return new GroupedOptimizer(settings, slotsFor(settings, tensors, plan, added), manager);
    }

    /** The slots {@link #build} would create, without allocating anything (for {@code inspect}). */
    public static List<ParamSlot> slotsFor(
            OptimizerSettings settings, Map<String, Parameter> tensors, FreezePlan plan) {
        return slotsFor(settings, tensors, plan, List.of());
    }

    /** The slots with groups added while training ({@link AddedGroup}). */
    public static List<ParamSlot> slotsFor(
            OptimizerSettings settings, Map<String, Parameter> tensors, FreezePlan plan, List<AddedGroup> added) {
        List<NamePattern> patterns = new ArrayList<>();
        for (int i = 0; i < settings.groups().size(); i++) {
            String where = "groups[" + i + "].match";
            NamePattern p;
            try {
                p = NamePattern.parse(settings.groups().get(i).match(), where);
            } catch (ConfigException e) {
                throw new ConfigException(ConfigException.Part.OPTIMIZER, e.path(), e.problem());
            }
            if (plan.decisions().stream().noneMatch(d -> p.matches(d.tensor()))) {
                throw new ConfigException(ConfigException.Part.OPTIMIZER, where, "pattern '" + p.source() + "' matches no parameter of the model; names are"
                                + " torchvision's (layer4.0.conv1.weight, fc.bias); run 'finetune inspect'");
            }
            patterns.add(p);
        }
        List<ParamSlot> out = new ArrayList<>();
        for (FreezePlan.Decision d : plan.decisions()) {
            if (!d.trainable()) {
                continue;
            }
            String name = d.name();
            Parameter p = tensors.get(name);
            double mult = 1;
            // A TorchScript module's parameters have no declared shape, only their array's.
            int dims = p.getShape() != null ? p.getShape().dimension() : p.getArray().getShape().dimension();
            boolean noDecay = !settings.decayNormAndBias() && dims <= 1;
            double wd = noDecay ? 0 : settings.weightDecay();
            String group = noDecay && settings.weightDecay() > 0 ? "base (no decay: bias/norm)" : "base";
            for (int i = 0; i < patterns.size(); i++) {
                if (patterns.get(i).matches(d.tensor())) {
                    OptimizerSettings.GroupSettings g = settings.groups().get(i);
                    // The last matching group decides everything; what it leaves out is the base setting.
                    mult = g.lrMult() == null ? 1 : g.lrMult();
                    wd = g.weightDecay() != null ? g.weightDecay() : (noDecay ? 0 : settings.weightDecay());
                    group = "optimizer.groups[" + i + "]";
                }
            }
            for (AddedGroup a : added) {
                if (a.params().contains(name)) {
                    mult = a.lrMult();
                    group = a.name();
                }
            }
            int stage = d.tensor().stage();
            if (settings.layerDecay() != 1 && stage >= 0) {
                int fromHead = d.tensor().stageNames().size() - 1 - stage;
                mult *= Math.pow(settings.layerDecay(), fromHead);
            }
            out.add(new ParamSlot(name, p, mult, wd, group));
        }
        return out;
    }

    public OptimizerSettings settings() {
        return settings;
    }

    public List<ParamSlot> slots() {
        return slots;
    }

    /** Names of the parameters this optimizer updates. */
    public List<String> parameterNames() {
        return slots.stream().map(ParamSlot::name).toList();
    }

    /** Names that have optimizer state (momentum buffers, Adam moments). */
    public List<String> namesWithState() {
        return List.copyOf(buf1.keySet());
    }

    /**
     * One update with base learning rate {@code lr}, then the gradients are zeroed. A slot whose parameter has been
     * frozen since the optimizer was built is a hard failure: it would otherwise be decayed or moved silently.
     */
    public void step(double lr) {
        try (Engines.NoGrad ng = Engines.noGrad()) {
            ng.getClass();
            if (scripted) {
                scriptedStep(lr);
                return;
            }
            for (ParamSlot slot : slots) {
                // One scope per parameter: its temporaries (a parameter-sized array or two) are freed before the next
                // parameter's, not all at the end of the step (ResNet-18's whole network: ~90 MB at once).
                try (NDScope scope = new NDScope()) {
                    scope.suppressNotUsedWarning();
                    update(slot, lr);
                }
            }
        }
    }

    /**
     * {@link #sgd} or {@link #adam} for every slot in one call. The state is created as the NDArray versions create it
     * (SGD's momentum buffer from the first update, Adam's moments as zeros); the gradient wrappers DJL makes are
     * freed with the scope.
     */
    private void scriptedStep(double lr) {
        int n = slots.size();
        if (n == 0) {
            return; // nothing trains (the NDArray loop does nothing either); an empty list has no element type to pass
        }
        boolean sgd = "sgd".equals(settings.name());
        if (!sgd && !"adam".equals(settings.name()) && !"adamw".equals(settings.name())) {
            throw new IllegalStateException(settings.name());
        }
        double m = settings.momentum();
        PtNDArray[] params = new PtNDArray[n];
        PtNDArray[] grads = new PtNDArray[n];
        PtNDArray[] first = new PtNDArray[sgd && m == 0 ? 0 : n];
        PtNDArray[] second = new PtNDArray[sgd ? 0 : n];
        boolean[] fresh = new boolean[n];
        long[] counts = new long[n];
        double[] lrs = new double[n];
        double[] wds = new double[n];
        try (NDScope scope = new NDScope()) {
            scope.suppressNotUsedWarning();
            for (int i = 0; i < n; i++) {
                ParamSlot slot = slots.get(i);
                checkTrainable(slot);
                params[i] = (PtNDArray) slot.parameter().getArray();
                grads[i] = (PtNDArray) params[i].getGradient();
                lrs[i] = lr * slot.lrMult();
                wds[i] = slot.weightDecay();
                if (first.length > 0) {
                    NDArray a = buf1.get(slot.name());
                    if (a == null) {
                        // SGD: torch.optim.SGD clones the first update into the buffer; the script copies it into this.
                        a = keep(params[i].zerosLike());
                        buf1.put(slot.name(), a);
                        fresh[i] = true;
                        if (!sgd) {
                            buf2.put(slot.name(), keep(params[i].zerosLike()));
                        }
                    }
                    first[i] = (PtNDArray) a;
                }
                if (second.length > 0) {
                    second[i] = (PtNDArray) buf2.get(slot.name());
                }
                counts[i] = steps.getOrDefault(slot.name(), 0L) + 1;
            }
            if (script == null) {
                script = sgd ? ScriptedUpdate.sgd(stateManager) : ScriptedUpdate.adam(stateManager);
            }
            if (sgd) {
                script.run(n, IValue.listFrom(params), IValue.listFrom(grads), IValue.listFrom(first),
                        IValue.listFrom(fresh), IValue.listFrom(lrs), IValue.listFrom(wds), IValue.from(m),
                        IValue.from(settings.dampening()), IValue.from(settings.nesterov()));
            } else {
                script.run(n, IValue.listFrom(params), IValue.listFrom(grads), IValue.listFrom(first),
                        IValue.listFrom(second), IValue.listFrom(counts), IValue.listFrom(lrs), IValue.listFrom(wds),
                        IValue.from(settings.beta1()), IValue.from(settings.beta2()), IValue.from(settings.eps()),
                        IValue.from("adamw".equals(settings.name())));
            }
        }
        for (int i = 0; i < n; i++) {
            steps.put(slots.get(i).name(), counts[i]);
        }
    }

    private static void checkTrainable(ParamSlot slot) {
        if (!slot.parameter().requiresGradient()) {
            throw new FinetuneException(
                    ErrorKind.INTERNAL,
                    "invariant broken: frozen parameter " + slot.name() + " is in the optimizer; rebuild the"
                            + " optimizer after changing the freeze policy");
        }
    }

    private void update(ParamSlot slot, double lr) {
        Parameter param = slot.parameter();
        checkTrainable(slot);
        NDArray p = param.getArray();
        NDArray g = p.getGradient();
        double plr = lr * slot.lrMult();
        switch (settings.name()) {
            case "sgd" -> sgd(slot, p, g, plr);
            case "adam" -> adam(slot, p, g, plr, false);
            case "adamw" -> adam(slot, p, g, plr, true);
            default -> throw new IllegalStateException(settings.name());
        }
        JniUtils.zeroGrad((PtNDArray) p);
    }

    /**
     * PyTorch's {@code clip_grad_norm_(params, maxNorm)}: the L2 norm of all gradients together (float32, the norm of
     * the per-parameter norms), and every gradient scaled by {@code min(1, maxNorm / (norm + 1e-6))}.
     *
     * @return the total norm before clipping
     */
    public double clipGradNorm(double maxNorm) {
        try (NDScope scope = new NDScope()) {
            scope.suppressNotUsedWarning();
            List<NDArray> norms = new ArrayList<>();
            for (ParamSlot slot : slots) {
                NDArray g = slot.parameter().getArray().getGradient();
                norms.add(g.norm().reshape(1));
            }
            if (norms.isEmpty()) {
                return 0;
            }
            NDArray total = ai.djl.ndarray.NDArrays.concat(new ai.djl.ndarray.NDList(norms)).norm();
            float totalNorm = total.getFloat();
            float coef = (float) (maxNorm / (totalNorm + 1e-6));
            if (coef < 1) {
                for (ParamSlot slot : slots) {
                    slot.parameter().getArray().getGradient().muli(coef);
                }
            }
            return totalNorm;
        }
    }

    /** Clears the gradients of the trainable parameters without updating (after a skipped step). */
    public void zeroGrad() {
        for (ParamSlot slot : slots) {
            JniUtils.zeroGrad((PtNDArray) slot.parameter().getArray());
        }
    }

    private void sgd(ParamSlot slot, NDArray p, NDArray g, double lr) {
        NDArray d = g;
        if (slot.weightDecay() != 0) {
            d = d.add(p.mul(slot.weightDecay()));
        }
        double m = settings.momentum();
        if (m != 0) {
            NDArray buf = buf1.get(slot.name());
            if (buf == null) {
                buf = keep(d.duplicate());
                buf1.put(slot.name(), buf);
            } else {
                // × (1 − dampening) is × 1 by default, exact: skip the multiplication and its temporary then.
                buf.muli(m).addi(settings.dampening() == 0 ? d : d.mul(1 - settings.dampening()));
            }
            d = settings.nesterov() ? d.add(buf.mul(m)) : buf;
        }
        steps.merge(slot.name(), 1L, Long::sum);
        p.subi(d.mul(lr));
    }

    private void adam(ParamSlot slot, NDArray p, NDArray g, double lr, boolean decoupled) {
        NDArray grad = g;
        if (slot.weightDecay() != 0) {
            if (decoupled) {
                p.muli(1 - lr * slot.weightDecay());
            } else {
                grad = grad.add(p.mul(slot.weightDecay()));
            }
        }
        double b1 = settings.beta1();
        double b2 = settings.beta2();
        NDArray m = buf1.get(slot.name());
        NDArray v = buf2.get(slot.name());
        if (m == null) {
            m = keep(grad.zerosLike());
            v = keep(grad.zerosLike());
            buf1.put(slot.name(), m);
            buf2.put(slot.name(), v);
        }
        long t = steps.merge(slot.name(), 1L, Long::sum);
        m.muli(b1).addi(grad.mul(1 - b1));
        v.muli(b2).addi(grad.mul(grad).muli(1 - b2));
        double bc1 = 1 - Math.pow(b1, t);
        double bc2 = 1 - Math.pow(b2, t);
        NDArray denom = v.sqrt().divi(Math.sqrt(bc2)).addi(settings.eps());
        p.subi(m.div(denom).muli(lr / bc1));
    }

    private NDArray keep(NDArray a) {
        NDScope.unregister(a);
        a.attach(stateManager);
        return a;
    }

    /**
     * The optimizer's state as named tensors, for checkpoints: {@code <param>.momentum_buffer} (SGD),
     * {@code <param>.exp_avg} / {@code .exp_avg_sq} (Adam), {@code <param>.step}.
     */
    public LinkedHashMap<String, HostTensor> exportState() {
        return TensorEntry.readAll(stateEntries());
    }

    /** {@link #exportState}'s tensors, each copied out of the engine when a checkpoint writer reads it. */
    public LinkedHashMap<String, TensorEntry> stateEntries() {
        LinkedHashMap<String, TensorEntry> out = new LinkedHashMap<>();
        boolean sgd = "sgd".equals(settings.name());
        for (ParamSlot s : slots) {
            NDArray a = buf1.get(s.name());
            if (a != null) {
                out.put(s.name() + (sgd ? ".momentum_buffer" : ".exp_avg"), entry(a));
            }
            NDArray b = buf2.get(s.name());
            if (b != null) {
                out.put(s.name() + ".exp_avg_sq", entry(b));
            }
            Long t = steps.get(s.name());
            if (t != null) {
                out.put(s.name() + ".step", new TensorEntry("I64", new long[0], () -> new float[] {t}));
            }
        }
        return out;
    }

    /** Restores state written by {@link #exportState}; entries for parameters not in this optimizer are ignored. */
    public void importState(Map<String, HostTensor> state) {
        boolean sgd = "sgd".equals(settings.name());
        for (ParamSlot s : slots) {
            HostTensor a = state.get(s.name() + (sgd ? ".momentum_buffer" : ".exp_avg"));
            if (a != null) {
                replace(buf1, s.name(), a);
            }
            HostTensor b = state.get(s.name() + ".exp_avg_sq");
            if (b != null) {
                replace(buf2, s.name(), b);
            }
            HostTensor t = state.get(s.name() + ".step");
            if (t != null) {
                steps.put(s.name(), (long) t.data()[0]);
            }
        }
    }

    private void replace(Map<String, NDArray> buffers, String name, HostTensor t) {
        NDArray old = buffers.remove(name);
        if (old != null) {
            old.close();
        }
        // In libtorch's memory, not a view of a direct buffer that only the garbage collector frees (NativeCopies).
        buffers.put(name, dev.finetune.engine.NativeCopies.floats(stateManager, t.data(),
                new ai.djl.ndarray.types.Shape(t.shape())));
    }

    private static TensorEntry entry(NDArray a) {
        return TensorEntry.f32(a.getShape().getShape(), a::toFloatArray);
    }

    @Override
    public void close() {
        if (script != null) {
            script.close();
        }
        stateManager.close();
    }
}
