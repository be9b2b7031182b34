package dev.finetune.checkpoint;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** The hand-written half and bfloat16 conversions. */
class DtypeTest {
    @Test
    void everyHalfSurvivesTheRoundTrip() {
        for (int h = 0; h < 0x10000; h++) {
            float f = Dtype.halfToFloat((short) h);
            short back = Dtype.floatToHalf(f);
            if (Float.isNaN(f)) {
                assertTrue(Float.isNaN(Dtype.halfToFloat(back)), Integer.toHexString(h));
            } else {
                assertEquals((short) h, back, Integer.toHexString(h));
            }
        }
    }

    @Test
    void halfRoundsToNearestEven() {
        assertEquals(1f, half(1f + 0x1p-11f)); // tie, 1.0 is even
        assertEquals(1f + 0x1p-9f, half(1f + 3 * 0x1p-11f)); // tie, rounds up to even
        assertEquals(65504f, half(65519f));
        assertEquals(Float.POSITIVE_INFINITY, half(65520f));
        assertEquals(0f, half(0x1p-25f)); // tie with the smallest subnormal, 0 is even
        assertEquals(0x1p-24f, half(Math.nextUp(0x1p-25f)));
        assertEquals(0x1p-14f, half(0x1p-14f - 0x1p-26f)); // rounding carries into the smallest normal
        assertEquals(-0f, half(-0f));
        assertTrue(Float.isNaN(half(Float.NaN)));
    }

    @Test
    void bfloat16RoundsToNearestEven() {
        assertEquals(1f, bf16(1f + 0x1p-8f)); // tie, even
        assertEquals(1f + 0x1p-6f, bf16(1f + 3 * 0x1p-8f));
        assertEquals(1f + 0x1p-7f, bf16(1f + 0x1p-7f));
        assertTrue(Float.isNaN(bf16(Float.NaN)));
    }

    private static float half(float f) {
        return Dtype.halfToFloat(Dtype.floatToHalf(f));
    }

    private static float bf16(float f) {
        return Float.intBitsToFloat((Dtype.floatToBfloat16(f) & 0xFFFF) << 16);
    }
}
