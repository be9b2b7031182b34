package dev.finetune.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

class NativeCopiesTest {
    @Test
    void copiesAreExactAndIndependentOfTheReusedStagingBuffer() {
        try (NDManager m = NDManager.newBaseManager()) {
            float[] a = new float[2 * 3 * 4 * 4];
            for (int i = 0; i < a.length; i++) {
                a[i] = (float) Math.sin(i) * 1e3f;
            }
            a[5] = Float.NaN;
            a[6] = -0.0f;
            NDArray first = NativeCopies.floats(m, a, new Shape(2, 3, 4, 4));
            float[] b = new float[a.length + 10];
            Arrays.fill(b, 7f);
            NDArray second = NativeCopies.floats(m, b, new Shape(2, 3, 4, 4)); // the first's staging, reused
            assertEquals(new Shape(2, 3, 4, 4), first.getShape());
            assertArrayEquals(a, first.toFloatArray(), "bit for bit, NaN and -0 included");
            assertArrayEquals(Arrays.copyOf(b, a.length), second.toFloatArray(), "a prefix of a longer array");
            // The tensor's memory is libtorch's: DJL's create(float[]) would leave it a view of a direct buffer that
            // only the garbage collector frees (PtNDArray's dataRef).
            assertNull(dataRef(first), "no Java buffer behind the tensor");
            try (NDArray viaDjl = m.create(a, new Shape(2, 3, 4, 4))) {
                assertNotNull(dataRef(viaDjl), "what this class exists to avoid");
            }
            float[] small = new float[3];
            assertThrows(IllegalArgumentException.class, () -> NativeCopies.floats(m, small, new Shape(2, 2)));
        }
    }

    private static Object dataRef(NDArray a) {
        try {
            var f = a.getClass().getDeclaredField("dataRef");
            f.setAccessible(true);
            return f.get(a);
        } catch (ReflectiveOperationException e) {
            throw new AssertionError("DJL's PtNDArray has no dataRef field any more; revisit NativeCopies", e);
        }
    }
}
