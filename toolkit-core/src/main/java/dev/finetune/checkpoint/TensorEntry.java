package dev.finetune.checkpoint;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Supplier;

/**
 * A tensor for a checkpoint writer: its stored type and shape up front (the file's header needs them first), its values
 * only when the writer reaches it. {@link SafetensorsWriter#writeEntries} fetches and writes one entry at a time, so
 * a training checkpoint (weights, the optimizer's buffers and the weight EMA's averages: 135 MB for a ResNet-18 with
 * SGD momentum) passes through the Java heap one tensor at a time instead of all at once — copied up front, those
 * arrays made G1 grow its heap at every epoch's checkpoint, which set a training run's peak RSS.
 *
 * @param sourceDtype as {@link HostTensor#sourceDtype()}
 * @param values the fp32 values in row-major order, read when called (it must return {@code numel(shape)} of them)
 */
public record TensorEntry(String sourceDtype, long[] shape, Supplier<float[]> values) {

    /** An entry whose values are already on the heap. */
    public static TensorEntry of(HostTensor t) {
        return new TensorEntry(t.sourceDtype(), t.shape(), t::data);
    }

    /** An fp32 entry whose values {@code values} reads when the writer reaches it. */
    public static TensorEntry f32(long[] shape, Supplier<float[]> values) {
        return new TensorEntry("F32", shape, values);
    }

    public long numel() {
        return HostTensor.numel(shape);
    }

    /** The values, checked against the shape. */
    public HostTensor read() {
        float[] v = values.get();
        if (v.length != numel()) {
            throw new IllegalStateException("a tensor of shape " + Arrays.toString(shape) + " produced " + v.length
                    + " values");
        }
        return new HostTensor(sourceDtype, shape, v);
    }

    /** Entries over tensors already on the heap, in the map's order. */
    public static LinkedHashMap<String, TensorEntry> of(Map<String, HostTensor> tensors) {
        LinkedHashMap<String, TensorEntry> out = new LinkedHashMap<>();
        tensors.forEach((k, v) -> out.put(k, of(v)));
        return out;
    }

    /** Every entry read, in order (for callers that want all values at once). */
    public static LinkedHashMap<String, HostTensor> readAll(Map<String, TensorEntry> entries) {
        LinkedHashMap<String, HostTensor> out = new LinkedHashMap<>();
        entries.forEach((k, v) -> out.put(k, v.read()));
        return out;
    }
}
