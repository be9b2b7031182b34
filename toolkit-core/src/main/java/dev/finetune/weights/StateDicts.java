package dev.finetune.weights;

import ai.djl.nn.Parameter;
import dev.finetune.checkpoint.HostTensor;
import dev.finetune.checkpoint.TensorEntry;
import dev.finetune.model.BatchNorm2d;
import dev.finetune.model.Network;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;

/** A model's tensors as a torchvision state_dict: same keys, same order, {@code num_batches_tracked} included. */
public final class StateDicts {
    private StateDicts() {}

    /** Copies every parameter and buffer out of the engine into JVM memory. */
    public static LinkedHashMap<String, HostTensor> export(Network model) {
        return TensorEntry.readAll(entries(model));
    }

    /**
     * The same tensors as {@link #export}, each copied out of the engine only when a writer reads it
     * ({@link TensorEntry}): for checkpoints, which then hold one tensor on the heap at a time.
     */
    public static LinkedHashMap<String, TensorEntry> entries(Network model) {
        Map<String, BatchNorm2d> bns = new HashMap<>();
        model.batchNorms().forEach(n -> bns.put(n.name(), n.bn()));
        LinkedHashMap<String, TensorEntry> out = new LinkedHashMap<>();
        for (Map.Entry<String, Parameter> e : model.namedTensors().entrySet()) {
            String name = e.getKey();
            Parameter p = e.getValue();
            out.put(name, TensorEntry.f32(p.getShape().getShape(), () -> p.getArray().toFloatArray()));
            if (name.endsWith(".running_var")) {
                String module = name.substring(0, name.length() - ".running_var".length());
                long n = bns.get(module).numBatchesTracked();
                out.put(module + ".num_batches_tracked", new TensorEntry("I64", new long[0], () -> new float[] {n}));
            }
        }
        return out;
    }
}
