package dev.finetune.checkpoint;

import java.util.Arrays;

/**
 * A tensor held in JVM memory, independent of any engine: what checkpoint readers produce and writers consume.
 * Values are always held as fp32 (half, bfloat16 and integer tensors are converted on read); {@code sourceDtype}
 * remembers what the file stored, in safetensors spelling (F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL).
 */
public record HostTensor(String sourceDtype, long[] shape, float[] data) {
    public HostTensor {
        long n = numel(shape);
        if (n != data.length) {
            throw new IllegalArgumentException(
                    "shape " + Arrays.toString(shape) + " needs " + n + " values, found " + data.length);
        }
    }

    /** An fp32 tensor. */
    public static HostTensor of(long[] shape, float[] data) {
        return new HostTensor("F32", shape, data);
    }

    /** Number of elements of a shape (1 for a scalar). */
    public static long numel(long[] shape) {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        return n;
    }

    public long numel() {
        return data.length;
    }

    /** The shape as torch prints it: {@code [64, 3, 7, 7]}. */
    public String shapeString() {
        return Arrays.toString(shape);
    }
}
