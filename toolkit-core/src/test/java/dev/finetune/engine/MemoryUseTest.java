package dev.finetune.engine;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.sun.jna.Native;
import com.sun.jna.Pointer;
import org.junit.jupiter.api.Test;

class MemoryUseTest {
    @Test
    void freePagesInTheMiddleOfMallocsHeapGoBackToTheOs() {
        assumeTrue(MemoryUse.rssBytes() > 0 && System.getProperty("os.name").startsWith("Linux"), "Linux only");
        // 3,200 blocks of 64 KiB (below glibc's mmap threshold, so from an arena), touched, then all freed but the
        // last: free() alone cannot return them (the arena's top is in use), malloc_trim can.
        int blocks = 3200;
        int size = 64 * 1024;
        long[] p = new long[blocks];
        for (int i = 0; i < blocks; i++) {
            p[i] = Native.malloc(size);
            new Pointer(p[i]).setMemory(0, size, (byte) 1);
        }
        for (int i = 0; i < blocks - 1; i++) {
            Native.free(p[i]);
        }
        try {
            long released = MemoryUse.releaseFreePages();
            assertTrue(released > 100L << 20, "released " + (released >> 20) + " MiB of ~200 MiB freed");
            assertTrue(MemoryUse.releaseFreePages() < 50L << 20, "nothing much left to release the second time");
        } finally {
            Native.free(p[blocks - 1]);
        }
    }
}
