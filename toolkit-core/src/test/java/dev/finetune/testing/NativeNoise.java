package dev.finetune.testing;

import ai.djl.ndarray.NDManager;
import java.util.Random;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Another thread that allocates, fills and frees native tensors until closed, as the data loader's workers do: a step
 * that reads memory it no longer owns then reads garbage instead of, by luck, its old values.
 */
public final class NativeNoise implements AutoCloseable {
    private final AtomicBoolean stop = new AtomicBoolean();
    private final Thread thread;

    private NativeNoise(boolean on) {
        thread = on ? new Thread(this::run, "native-noise") : null;
        if (thread != null) {
            thread.start();
        }
    }

    /** Starts the noise when {@code on}; a no-op otherwise (for the quiet side of a comparison). */
    public static NativeNoise start(boolean on) {
        return new NativeNoise(on);
    }

    private void run() {
        Random q = new Random(1);
        try (NDManager nm = NDManager.newBaseManager()) {
            while (!stop.get()) {
                float[] junk = new float[1000 + q.nextInt(200_000)];
                java.util.Arrays.fill(junk, 1e6f);
                try (NDManager s = nm.newSubManager()) {
                    s.create(junk).add(1f);
                }
            }
        }
    }

    @Override
    public void close() throws InterruptedException {
        stop.set(true);
        if (thread != null) {
            thread.join();
        }
    }
}
