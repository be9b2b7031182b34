package dev.finetune.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.nn.Parameter;
import dev.finetune.checkpoint.HostTensor;
import dev.finetune.engine.Engines;
import dev.finetune.model.BnMode;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
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
 */
public final class WeightEma implements AutoCloseable {
    /** Key prefix of the averages in a training checkpoint's state. */
    public static final String STATE_PREFIX = "ema.";

    private final double decay;
    private final NDManager manager;
    private final Map<String, NDArray> shadow = new LinkedHashMap<>();
    /** Tensors averaged at least once (the others equal the model's). */
    private final Set<String> touched = new LinkedHashSet<>();

    private WeightEma(FineTuner ft, double decay) {
        if (!(decay > 0 && decay < 1)) {
            throw new IllegalArgumentException("EMA decay must be in (0, 1), found " + decay);
        }
        this.decay = decay;
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
        return new WeightEma(ft, decay);
    }

    public double decay() {
        return decay;
    }

    /** One update after an optimizer step. */
    public void update(FineTuner ft) {
        Map<String, BnMode> modes = ft.plan().bnModes();
        try (Engines.NoGrad g = Engines.noGrad(); NDManager tmp = manager.newSubManager()) {
            for (Map.Entry<String, Parameter> e : ft.model().namedTensors().entrySet()) {
                String name = e.getKey();
                if (!changes(name, e.getValue(), modes)) {
                    continue;
                }
                NDArray scaled = e.getValue().getArray().mul((float) (1 - decay));
                scaled.attach(tmp);
                shadow.get(name).muli((float) decay).addi(scaled);
                touched.add(name);
            }
        }
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
        Map<String, Parameter> tensors = ft.model().namedTensors();
        Map<String, float[]> saved = new LinkedHashMap<>();
        try (Engines.NoGrad g = Engines.noGrad()) {
            for (String name : touched) {
                NDArray live = tensors.get(name).getArray();
                saved.put(name, live.toFloatArray());
                live.set(shadow.get(name).toFloatArray());
            }
        }
        try {
            return body.get();
        } finally {
            try (Engines.NoGrad g = Engines.noGrad()) {
                saved.forEach((name, values) -> tensors.get(name).getArray().set(values));
            }
        }
    }

    /** The averages that differ from the model's, keyed {@code ema.NAME}, for a training checkpoint. */
    public Map<String, HostTensor> exportState() {
        Map<String, HostTensor> out = new LinkedHashMap<>();
        for (String name : touched) {
            NDArray s = shadow.get(name);
            out.put(STATE_PREFIX + name, HostTensor.of(s.getShape().getShape(), s.toFloatArray()));
        }
        return out;
    }

    /** Restores the averages from {@link #exportState()}'s entries (other keys are ignored). */
    public void importState(Map<String, HostTensor> state) {
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
        manager.close();
    }
}
