package dev.finetune.checkpoint;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.Arrays;
import java.util.stream.Collectors;

/**
 * Element types the readers and writers understand, spelt as safetensors spells them (the spelling
 * {@link HostTensor#sourceDtype()} uses), with the conversions to and from the fp32 a {@link HostTensor} holds.
 *
 * <p>Half and bfloat16 are converted by hand because {@code Float.float16ToFloat} only arrived in Java 20.
 */
enum Dtype {
    F64(8), F32(4), F16(2), BF16(2), I64(8), I32(4), I16(2), I8(1), U8(1), BOOL(1);

    /** Bytes per element. */
    final int size;

    Dtype(int size) {
        this.size = size;
    }

    /** The dtype with this safetensors name, or null. */
    static Dtype parse(String name) {
        for (Dtype d : values()) {
            if (d.name().equals(name)) {
                return d;
            }
        }
        return null;
    }

    /** The names, for error messages: {@code F64, F32, ...}. */
    static String names() {
        return Arrays.stream(values()).map(Enum::name).collect(Collectors.joining(", "));
    }

    boolean isFloatingPoint() {
        return this == F64 || this == F32 || this == F16 || this == BF16;
    }

    /** Reads the element at absolute byte index {@code at} of {@code buf} (whose byte order is used) as fp32. */
    float read(ByteBuffer buf, int at) {
        return switch (this) {
            case F64 -> (float) buf.getDouble(at);
            case F32 -> buf.getFloat(at);
            case F16 -> halfToFloat(buf.getShort(at));
            case BF16 -> Float.intBitsToFloat((buf.getShort(at) & 0xFFFF) << 16);
            case I64 -> (float) buf.getLong(at);
            case I32 -> (float) buf.getInt(at);
            case I16 -> (float) buf.getShort(at);
            case I8 -> (float) buf.get(at);
            case U8 -> (float) (buf.get(at) & 0xFF);
            case BOOL -> buf.get(at) != 0 ? 1f : 0f;
        };
    }

    /**
     * Appends {@code value} in this dtype at the buffer's position. Integer types truncate toward zero (values
     * read from an integer tensor are whole numbers, so nothing is lost for them); BF16 rounds to nearest even.
     */
    void write(ByteBuffer buf, float value) {
        switch (this) {
            case F64 -> buf.putDouble(value);
            case F32 -> buf.putFloat(value);
            case F16 -> buf.putShort(floatToHalf(value));
            case BF16 -> buf.putShort(floatToBfloat16(value));
            case I64 -> buf.putLong((long) value);
            case I32 -> buf.putInt((int) value);
            case I16 -> buf.putShort((short) (int) value);
            case I8 -> buf.put((byte) (int) value);
            case U8 -> buf.put((byte) (int) value);
            case BOOL -> buf.put(value != 0f ? (byte) 1 : (byte) 0);
        }
    }

    /** Writes {@code values} in this dtype, little-endian, a chunk at a time so no second full copy is made. */
    void writeAll(float[] values, OutputStream out) throws IOException {
        ByteBuffer buf = ByteBuffer.allocate(Math.max(size, (1 << 16) / size * size)).order(ByteOrder.LITTLE_ENDIAN);
        if (this == F32) {
            // Bulk copies: a checkpoint holds tens of millions of fp32 values.
            FloatBuffer fb = buf.asFloatBuffer();
            for (int at = 0; at < values.length; at += fb.capacity()) {
                int n = Math.min(fb.capacity(), values.length - at);
                fb.clear();
                fb.put(values, at, n);
                out.write(buf.array(), 0, n * 4);
            }
            return;
        }
        for (float v : values) {
            if (buf.remaining() < size) {
                out.write(buf.array(), 0, buf.position());
                buf.clear();
            }
            write(buf, v);
        }
        out.write(buf.array(), 0, buf.position());
    }

    /**
     * Reads {@code n} values from {@code buf} (positions 0 .. n·size) into {@code out} from {@code offset}: bulk paths
     * for fp32 and a table for fp16, the element-wise {@link #read} otherwise.
     */
    void readAll(ByteBuffer buf, int n, float[] out, int offset) {
        if (this == F32) {
            // A view from position 0 (the buffer's position may be anywhere after a read), in the buffer's order.
            buf.duplicate().position(0).order(buf.order()).asFloatBuffer().get(0, out, offset, n);
            return;
        }
        if (this == F16) {
            float[] table = HalfTable.VALUES;
            for (int i = 0; i < n; i++) {
                out[offset + i] = table[buf.getShort(2 * i) & 0xFFFF];
            }
            return;
        }
        for (int i = 0; i < n; i++) {
            out[offset + i] = read(buf, i * size);
        }
    }

    /** Every fp16 bit pattern's fp32 value, computed once (256 KB). */
    private static final class HalfTable {
        static final float[] VALUES = new float[1 << 16];

        static {
            for (int h = 0; h < VALUES.length; h++) {
                VALUES[h] = halfToFloat((short) h);
            }
        }
    }

    static float halfToFloat(short half) {
        int h = half & 0xFFFF;
        int sign = (h & 0x8000) << 16;
        int exponent = (h >>> 10) & 0x1F;
        int mantissa = h & 0x3FF;
        if (exponent == 0) {
            float magnitude = mantissa * 0x1p-24f; // subnormal (or zero): mantissa * 2^-24, exact in fp32
            return sign != 0 ? -magnitude : magnitude;
        }
        if (exponent == 0x1F) {
            return Float.intBitsToFloat(sign | 0x7F800000 | (mantissa << 13));
        }
        return Float.intBitsToFloat(sign | ((exponent - 15 + 127) << 23) | (mantissa << 13));
    }

    /** fp32 to IEEE half, rounding to nearest even as torch's {@code .half()} does; overflow becomes infinity. */
    static short floatToHalf(float value) {
        int bits = Float.floatToRawIntBits(value);
        int sign = (bits >>> 16) & 0x8000;
        int exponent = (bits >>> 23) & 0xFF;
        int mantissa = bits & 0x7FFFFF;
        if (exponent == 0xFF) {
            // Keep NaN a NaN even when its payload sits only in the low bits that are dropped.
            return (short) (sign | 0x7C00 | (mantissa != 0 ? 0x200 | (mantissa >>> 13) : 0));
        }
        int e = exponent - 127 + 15;
        if (e >= 0x1F) {
            return (short) (sign | 0x7C00);
        }
        if (e <= 0) {
            if (e < -10) {
                return (short) sign; // below half the smallest subnormal
            }
            int full = mantissa | 0x800000;
            int shift = 14 - e;
            int result = full >>> shift;
            int rest = full & ((1 << shift) - 1);
            int halfway = 1 << (shift - 1);
            if (rest > halfway || (rest == halfway && (result & 1) != 0)) {
                result++; // may carry into the smallest normal, which is the right answer
            }
            return (short) (sign | result);
        }
        int result = sign | (e << 10) | (mantissa >>> 13);
        int rest = mantissa & 0x1FFF;
        if (rest > 0x1000 || (rest == 0x1000 && (result & 1) != 0)) {
            result++; // a carry into the exponent is correct, up to and including infinity
        }
        return (short) result;
    }

    static short floatToBfloat16(float value) {
        int bits = Float.floatToRawIntBits(value);
        if (Float.isNaN(value)) {
            return (short) ((bits >>> 16) | 0x40);
        }
        int rounding = 0x7FFF + ((bits >>> 16) & 1);
        return (short) ((bits + rounding) >>> 16);
    }
}
