package dev.finetune.fuzz;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

/**
 * Seeded byte-level mutations of a valid file: bit flips, byte replacements, integers that break size arithmetic,
 * truncation, insertion, deletion and chunk duplication. Input {@code i} of a run depends only on the seed file, the
 * run's seed and {@code i}, so a failure message's "seed 17 input 408" reproduces exactly that input.
 */
final class Mutator {
    /** Values that make length and offset checks overflow, go negative, or claim far more than the file holds. */
    private static final long[] INTERESTING = {
        0, 1, -1, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFF_FFFFL, 0x8000_0000L, 0xFFFF_FFFFL,
        0x1_0000_0000L, 4_000_000_000L, 100L << 30, Long.MAX_VALUE, Long.MIN_VALUE, Long.MAX_VALUE - 7,
        Integer.MAX_VALUE - 8, 1L << 62,
    };

    private final byte[] seed;
    private final long runSeed;

    /**
     * @param seed the valid file every input starts from
     * @param runSeed fixed per format, so runs are repeatable
     */
    Mutator(byte[] seed, long runSeed) {
        this.seed = seed.clone();
        this.runSeed = runSeed;
    }

    /** A mutated input and the list of mutations that made it, for failure messages. */
    record Mutant(int index, byte[] bytes, List<String> steps) {
        String describe() {
            return "input " + index + " (" + String.join(", ", steps) + ")";
        }
    }

    /** Input {@code index}: one to four stacked mutations of the seed. */
    Mutant mutant(int index) {
        Random random = new Random(runSeed * 1_000_003L + index);
        byte[] b = seed.clone();
        List<String> steps = new ArrayList<>();
        int count = 1 + random.nextInt(4);
        for (int k = 0; k < count; k++) {
            b = mutate(b, random, steps);
        }
        return new Mutant(index, b, steps);
    }

    static byte[] mutate(byte[] b, Random random, List<String> steps) {
        if (b.length == 0) {
            steps.add("insert into empty");
            byte[] out = new byte[1 + random.nextInt(16)];
            random.nextBytes(out);
            return out;
        }
        int at = random.nextInt(b.length);
        switch (random.nextInt(8)) {
            case 0 -> {
                int bit = random.nextInt(8);
                b[at] ^= (byte) (1 << bit);
                steps.add("flip bit " + bit + " of byte " + at);
                return b;
            }
            case 1 -> {
                byte v = (byte) random.nextInt(256);
                b[at] = v;
                steps.add("set byte " + at + " to " + (v & 0xFF));
                return b;
            }
            case 2 -> {
                long v = INTERESTING[random.nextInt(INTERESTING.length)];
                int width = new int[] {1, 2, 4, 8}[random.nextInt(4)];
                ByteOrder order = random.nextBoolean() ? ByteOrder.LITTLE_ENDIAN : ByteOrder.BIG_ENDIAN;
                byte[] bytes = ByteBuffer.allocate(8).order(order).putLong(v).array();
                // For little-endian the low bytes come first; for big-endian they are last.
                int from = order == ByteOrder.LITTLE_ENDIAN ? 0 : 8 - width;
                int n = Math.min(width, b.length - at);
                System.arraycopy(bytes, from, b, at, n);
                steps.add("write " + v + " as " + width + "-byte " + order + " at " + at);
                return b;
            }
            case 3 -> {
                steps.add("truncate to " + at);
                return Arrays.copyOf(b, at);
            }
            case 4 -> {
                byte[] extra = new byte[1 + random.nextInt(16)];
                random.nextBytes(extra);
                steps.add("insert " + extra.length + " random bytes at " + at);
                return splice(b, at, 0, extra);
            }
            case 5 -> {
                int len = 1 + random.nextInt(Math.min(64, b.length - at));
                steps.add("delete " + len + " bytes at " + at);
                return splice(b, at, len, new byte[0]);
            }
            case 6 -> {
                int len = 1 + random.nextInt(Math.min(256, b.length - at));
                byte[] chunk = Arrays.copyOfRange(b, at, at + len);
                int to = random.nextInt(b.length + 1);
                steps.add("duplicate " + len + " bytes from " + at + " to " + to);
                return splice(b, to, 0, chunk);
            }
            default -> {
                int len = 1 + random.nextInt(Math.min(8, b.length - at));
                byte fill = random.nextBoolean() ? (byte) 0 : (byte) 0xFF;
                Arrays.fill(b, at, at + len, fill);
                steps.add("fill " + len + " bytes at " + at + " with " + (fill & 0xFF));
                return b;
            }
        }
    }

    /** {@code b} with {@code remove} bytes at {@code at} replaced by {@code insert}. */
    static byte[] splice(byte[] b, int at, int remove, byte[] insert) {
        byte[] out = new byte[b.length - remove + insert.length];
        System.arraycopy(b, 0, out, 0, at);
        System.arraycopy(insert, 0, out, at, insert.length);
        System.arraycopy(b, at + remove, out, at + insert.length, b.length - at - remove);
        return out;
    }
}
