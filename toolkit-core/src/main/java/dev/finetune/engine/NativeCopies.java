package dev.finetune.engine;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.concurrent.ConcurrentLinkedQueue;

/**
 * Java arrays copied into tensors whose memory libtorch owns and frees when the array closes.
 *
 * <p>Written by hand because DJL's {@code NDManager.create(float[], Shape)} does not do this: on the CPU it copies
 * the data into a fresh direct {@link ByteBuffer} and makes the tensor a view of that buffer, whose memory is
 * returned only when the garbage collector finds the buffer unreachable — closing the NDArray does not free it. A
 * data loader creating a 6 MB batch several times a second thus keeps every batch since the last GC resident (and
 * fragments malloc's arenas with them). Here the data goes through a few pooled direct buffers, reused across
 * batches, into a tensor libtorch clones; the view is closed before its buffer is reused.
 */
public final class NativeCopies {
    /**
     * Staging buffers kept for reuse. A data loader's batches stay staged from the worker that built them to the
     * consumer's copy: its prefetch window (twice its workers, one per core), the batch each worker is building and
     * the one waiting; fewer than that and every batch past the pool would be a new direct buffer that only the garbage
     * collector frees. 8 on two cores.
     */
    private static final int POOLED = Math.max(8, 3 * Runtime.getRuntime().availableProcessors() + 2);

    private static final ConcurrentLinkedQueue<ByteBuffer> POOL = new ConcurrentLinkedQueue<>();

    private NativeCopies() {}

    /**
     * A float32 tensor of {@code shape} in {@code manager}, holding {@code data[0 .. shape.size())}, in memory
     * libtorch owns.
     */
    public static NDArray floats(NDManager manager, float[] data, Shape shape) {
        return tensor(manager, staged(data, Math.toIntExact(shape.size())), shape);
    }

    /**
     * {@code data[0 .. length)} in a pooled direct buffer: the Java half of {@link #floats}, for a thread other than
     * the one that makes the tensor. Give the buffer to {@link #tensor} or back with {@link #release}.
     */
    public static ByteBuffer staged(float[] data, int length) {
        if (length > data.length) {
            throw new IllegalArgumentException(length + " values needed, the array has " + data.length);
        }
        ByteBuffer staging = take((long) length * Float.BYTES);
        staging.asFloatBuffer().put(data, 0, length);
        return staging;
    }

    /**
     * A float32 tensor of {@code shape} in {@code manager} with {@code staged}'s values, in memory libtorch owns,
     * allocated by the calling thread; the buffer goes back to the pool.
     */
    public static NDArray tensor(NDManager manager, ByteBuffer staged, Shape shape) {
        try {
            if ((long) staged.limit() != shape.size() * Float.BYTES) {
                throw new IllegalArgumentException(shape + " needs " + shape.size() * Float.BYTES
                        + " bytes, the buffer has " + staged.limit());
            }
            try (NDArray view = manager.create(staged, shape, DataType.FLOAT32)) {
                return view.duplicate();
            }
        } finally {
            release(staged);
        }
    }

    private static ByteBuffer take(long bytes) {
        int size = Math.toIntExact(bytes);
        ByteBuffer b;
        while ((b = POOL.poll()) != null) {
            if (b.capacity() >= size) {
                b.clear().limit(size);
                return b;
            }
            // Too small for this shape: dropped, and a larger one takes its place in the pool.
        }
        return ByteBuffer.allocateDirect(size).order(ByteOrder.nativeOrder());
    }

    /** Returns a buffer from {@link #staged} to the pool (done by {@link #tensor}; call it for one left unused). */
    public static void release(ByteBuffer b) {
        if (POOL.size() < POOLED) {
            POOL.add(b);
        }
    }
}
