package dev.finetune.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.nn.Parameter;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.jni.IValue;
import dev.finetune.checkpoint.HostTensor;
import dev.finetune.checkpoint.TensorEntry;
import dev.finetune.engine.Engines;
import dev.finetune.model.BnMode;
import dev.finetune.optim.GroupedOptimizer;
import dev.finetune.optim.ScriptedUpdate;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Supplier;

/**
 * An exponential moving average of a model's weights, as timm's {@code ModelEmaV2}: a copy of the state taken at the
 * start, then after every optimizer step {@code ema = decay·ema + (1 − decay)·w}. Only tensors that can change are
 * averaged — trainable parameters and the running statistics of batch norms in TRAIN mode — so a frozen tensor's
 * average stays bit-identical to it (timm averages those too, which moves them by rounding only).
 *
 * <p>{@link #withAveragedWeights} runs code (validation, writing {@code ema.safetensors}) on the averaged weights and
 * puts the model's own back bit for bit. The state travels in the training checkpoint, so resume is exact.
 *
 * <p>Both run as one TorchScript call ({@link ScriptedUpdate#ema}: ModelEmaV2's operations in its order, so the same
 * values as the op-by-op version; the swap exchanges averages and weights in place, with no host copies). With
 * {@code -Dfinetune.optimizer.scripted=false} ({@link GroupedOptimizer#SCRIPTED_PROPERTY}) they run op by op with
 * NDArrays and host arrays, the reference {@code WeightEmaTest} compares them with.
 */
public final class WeightEma implements AutoCloseable {
    /** Key prefix of the averages in a training checkpoint's state. */
    public static final String STATE_PREFIX = "ema.";

    private final double decay;
    private final NDManager manager;
    private final Map<String, NDArray> shadow = new LinkedHashMap<>();
    /** Tensors averaged at least once (the others equal the model's). */
    private final Set<String> touched = new LinkedHashSet<>();
    private final boolean scripted;
    private ScriptedUpdate script;
    /** True while the averages are in the model (inside {@link #withAveragedWeights}). */
    private boolean swapped;

    private WeightEma(FineTuner ft, double decay, boolean scripted) {
        if (!(decay > 0 && decay < 1)) {
            throw new IllegalArgumentException("EMA decay must be in (0, 1), found " + decay);
        }
        this.decay = decay;
        this.scripted = scripted;
        this.manager = ft.manager().newSubManager();
        try (Engines.NoGrad g = Engines.noGrad()) {
            ft.model().namedTensors().forEach((name, p) -> {
                NDArray copy = p.getArray().duplicate();
                copy.attach(manager);
                shadow.put(name, copy);
            });
        }
    }

    /** Starts an average of {@code ft}'s current weights. */
    public static WeightEma start(FineTuner ft, double decay) {
        return new WeightEma(ft, decay, !"false".equals(System.getProperty(GroupedOptimizer.SCRIPTED_PROPERTY)));
    }

    /** {@link #start} with the op-by-op NDArray version ({@code scripted} false) or the TorchScript one. */
    static WeightEma start(FineTuner ft, double decay, boolean scripted) {
        return new WeightEma(ft, decay, scripted);
    }

    public double decay() {
        return decay;
    }

    /** One update after an optimizer step. */
    public void update(FineTuner ft) {
        if (swapped) {
            throw new IllegalStateException("the EMA cannot update while its averages are in the model");
        }
        Map<String, BnMode> modes = ft.plan().bnModes();
        List<String> names = new ArrayList<>();
        List<NDArray> live = new ArrayList<>();
        for (Map.Entry<String, Parameter> e : ft.model().namedTensors().entrySet()) {
            if (changes(e.getKey(), e.getValue(), modes)) {
                names.add(e.getKey());
                live.add(e.getValue().getArray());
            }
        }
        try (Engines.NoGrad g = Engines.noGrad()) {
            if (scripted) {
                runScript(names, live, false);
            } else {
                try (NDManager tmp = manager.newSubManager()) {
                    for (int i = 0; i < names.size(); i++) {
                        NDArray scaled = live.get(i).mul((float) (1 - decay));
                        scaled.attach(tmp);
                        shadow.get(names.get(i)).muli((float) decay).addi(scaled);
                    }
                }
            }
        }
        touched.addAll(names);
    }

    /** ema_step.pt over the pairs (average, tensor): the update, or the exchange of their values. */
    private void runScript(List<String> names, List<NDArray> live, boolean swap) {
        int n = names.size();
        if (n == 0) {
            return; // nothing changes; an empty list has no element type to pass
        }
        PtNDArray[] averages = new PtNDArray[n];
        PtNDArray[] tensors = new PtNDArray[n];
        for (int i = 0; i < n; i++) {
            averages[i] = (PtNDArray) shadow.get(names.get(i));
            tensors[i] = (PtNDArray) live.get(i);
        }
        if (script == null) {
            script = ScriptedUpdate.ema(manager);
        }
        script.run(n, IValue.listFrom(averages), IValue.listFrom(tensors), IValue.from(decay), IValue.from(swap));
    }

    private static boolean changes(String name, Parameter p, Map<String, BnMode> modes) {
        if (name.endsWith(".running_mean") || name.endsWith(".running_var")) {
            String bn = name.substring(0, name.lastIndexOf('.'));
            return modes.getOrDefault(bn, BnMode.TRAIN) == BnMode.TRAIN;
        }
        return p.requiresGradient();
    }

    /** Runs {@code body} with the averaged weights in the model, then restores the model's own exactly. */
    public <T> T withAveragedWeights(FineTuner ft, Supplier<T> body) {
        if (swapped) {
            throw new IllegalStateException("the EMA's averages are already in the model");
        }
        Map<String, Parameter> tensors = ft.model().namedTensors();
        List<String> names = new ArrayList<>(touched);
        List<NDArray> live = new ArrayList<>();
        names.forEach(name -> live.add(tensors.get(name).getArray()));
        if (!scripted) {
            return withHostCopies(names, live, body);
        }
        try (Engines.NoGrad g = Engines.noGrad()) {
            runScript(names, live, true);
        }
        swapped = true;
        try {
            return body.get();
        } finally {
            try (Engines.NoGrad g = Engines.noGrad()) {
                runScript(names, live, true);
            }
            swapped = false;
        }
    }

    /** The reference version of {@link #withAveragedWeights}: the model's values kept in host arrays meanwhile. */
    private <T> T withHostCopies(List<String> names, List<NDArray> live, Supplier<T> body) {
        List<float[]> saved = new ArrayList<>();
        try (Engines.NoGrad g = Engines.noGrad()) {
            for (int i = 0; i < names.size(); i++) {
                saved.add(live.get(i).toFloatArray());
                live.get(i).set(shadow.get(names.get(i)).toFloatArray());
            }
        }
        swapped = true;
        try {
            return body.get();
        } finally {
            try (Engines.NoGrad g = Engines.noGrad()) {
                for (int i = 0; i < names.size(); i++) {
                    live.get(i).set(saved.get(i));
                }
            }
            swapped = false;
        }
    }

    /** The averages that differ from the model's, keyed {@code ema.NAME}, for a training checkpoint. */
    public Map<String, HostTensor> exportState() {
        return TensorEntry.readAll(stateEntries());
    }

    /** {@link #exportState}'s tensors, each copied out of the engine when a checkpoint writer reads it. */
    public LinkedHashMap<String, TensorEntry> stateEntries() {
        if (swapped) {
            // The averages are in the model and the model's own weights here: exporting now would swap them.
            throw new IllegalStateException("the EMA's state cannot be exported while its averages are in the model");
        }
        LinkedHashMap<String, TensorEntry> out = new LinkedHashMap<>();
        for (String name : touched) {
            NDArray s = shadow.get(name);
            out.put(STATE_PREFIX + name, TensorEntry.f32(s.getShape().getShape(), () -> {
                if (swapped) {
                    throw new IllegalStateException("the EMA's state cannot be read while its averages are in the"
                            + " model");
                }
                return s.toFloatArray();
            }));
        }
        return out;
    }

    /** Restores the averages from {@link #exportState()}'s entries (other keys are ignored). */
    public void importState(Map<String, HostTensor> state) {
        if (swapped) {
            throw new IllegalStateException("the EMA's state cannot be imported while its averages are in the model");
        }
        state.forEach((key, t) -> {
            if (!key.startsWith(STATE_PREFIX)) {
                return;
            }
            String name = key.substring(STATE_PREFIX.length());
            NDArray s = shadow.get(name);
            if (s == null || s.getShape().size() != t.data().length) {
                throw new IllegalStateException("the checkpoint's EMA of " + name + " does not fit the model");
            }
            s.set(t.data());
            touched.add(name);
        });
    }

    @Override
    public void close() {
        if (script != null) {
            script.close();
        }
        manager.close();
    }
}
