package dev.finetune.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Map;
import org.junit.jupiter.api.Test;

/** The lean-steps malloc policy acts only where the launcher prepared it, and only for large full steps. */
class MallocPolicyTest {
    private static final Map<String, String> LAUNCHED = Map.of("FINETUNE_MALLOC", "lean-steps",
            "FINETUNE_MALLOC_SET", "GLIBC_TUNABLES", "GLIBC_TUNABLES", "glibc.malloc.hugetlb=1");

    @Test
    void onlyWhereTheLauncherSetHugePages() {
        assertTrue(MallocPolicy.applies(LAUNCHED));
        assertFalse(MallocPolicy.applies(Map.of()), "glibc's defaults");
        // No transparent huge pages (the launcher then sets nothing): the mappings' page faults would cost 25-35 %.
        assertFalse(MallocPolicy.applies(Map.of("FINETUNE_MALLOC", "lean-steps")));
        // The user's own GLIBC_TUNABLES, which the launcher left alone.
        assertFalse(MallocPolicy.applies(
                Map.of("FINETUNE_MALLOC", "lean-steps", "GLIBC_TUNABLES", "glibc.malloc.hugetlb=1")));
        // lean sets its threshold from the start; keep and glibc want none.
        assertFalse(MallocPolicy.applies(Map.of("FINETUNE_MALLOC", "lean",
                "FINETUNE_MALLOC_SET", "MALLOC_MMAP_THRESHOLD_ GLIBC_TUNABLES",
                "GLIBC_TUNABLES", "glibc.malloc.hugetlb=1",
                "MALLOC_MMAP_THRESHOLD_", "8388608")));
    }

    @Test
    void fromSixteenMebibytesOfInput() {
        long bytes224 = 3L * 224 * 224 * Float.BYTES;
        assertTrue(MallocPolicy.wants(32 * bytes224), "ResNet-18's full step at 32x224, measured to gain");
        assertFalse(MallocPolicy.wants(16 * bytes224), "16x224 saved memory but was 5-15 % slower with it");
        assertFalse(MallocPolicy.wants(8 * bytes224), "batch 8 at 224 was slower with it");
        assertFalse(MallocPolicy.wants(128L * 3 * 64 * 64 * Float.BYTES), "and 128x64");
        assertTrue(MallocPolicy.wants(128L * 3 * 112 * 112 * Float.BYTES), "Fashion-MNIST-10 at 112, batch 128");
        assertEquals(8, MallocPolicy.THRESHOLD_MIB, "lean's threshold");
    }

    @Test
    void theFastPathCheckSetsThresholdsOnlyUnderGlibcsDefaults() {
        assertTrue(MallocPolicy.nothingAsked(Map.of()));
        assertTrue(MallocPolicy.nothingAsked(Map.of("PATH", "/usr/bin", "FINETUNE_JAVA_OPTS", "-Xmx8g")));
        assertTrue(MallocPolicy.nothingAsked(Map.of("FINETUNE_MALLOC", "")), "empty is unset, as in the launcher");
        assertFalse(MallocPolicy.nothingAsked(MallocPolicy.INFERENCE_VARIABLES), "evaluate's and predict's");
        assertFalse(MallocPolicy.nothingAsked(Map.of("FINETUNE_MALLOC", "glibc")), "glibc's own, throughout");
        assertFalse(MallocPolicy.nothingAsked(LAUNCHED), "lean-steps sets its own");
        assertFalse(MallocPolicy.nothingAsked(Map.of("MALLOC_ARENA_MAX", "2")), "the user's malloc settings");
        assertFalse(MallocPolicy.nothingAsked(Map.of("GLIBC_TUNABLES", "glibc.malloc.hugetlb=1")));
        assertFalse(MallocPolicy.nothingAsked(Map.of("LD_PRELOAD", "/usr/lib/libtcmalloc_minimal.so.4")),
                "another allocator in glibc's place");
        assertEquals(java.util.Optional.of("/usr/lib/libtcmalloc_minimal.so.4"), MallocPolicy.preloaded(
                Map.of("LD_PRELOAD", "/opt/libfoo.so /usr/lib/libtcmalloc_minimal.so.4")));
        assertEquals(java.util.Optional.of("libjemalloc.so.2"), MallocPolicy.preloaded(
                Map.of("LD_PRELOAD", "libjemalloc.so.2")));
        assertEquals(java.util.Optional.empty(), MallocPolicy.preloaded(Map.of("LD_PRELOAD", "/opt/libfoo.so")));
        assertEquals(1024, MallocPolicy.AFTER_CHECK_TRIM_MIB, "the trim threshold measured not to slow later steps");
    }

    @Test
    void onlyAHeapThatNeverUnmapsIsTrimmedAfterAShapesFirstBatches() {
        assertTrue(MallocPolicy.neverUnmaps(MallocPolicy.INFERENCE_VARIABLES), "evaluate's and predict's");
        assertTrue(MallocPolicy.neverUnmaps(Map.of("MALLOC_ARENA_MAX", "1", "MALLOC_MMAP_MAX_", "0",
                "MALLOC_TRIM_THRESHOLD_", "17179869184", "MALLOC_TOP_PAD_", "268435456")), "keep");
        assertFalse(MallocPolicy.neverUnmaps(Map.of()), "glibc's defaults unmap large blocks themselves");
        assertFalse(MallocPolicy.neverUnmaps(Map.of("MALLOC_MMAP_MAX_", "0")), "thread arenas still unmap");
        assertEquals(3, MallocPolicy.SETTLING_BATCHES, "the batches over which the heap was seen to grow");
    }

    @Test
    void trainingRunsGetFixedThresholdsUnderGlibcsDefaults() {
        org.junit.jupiter.api.Assumptions.assumeTrue(System.getProperty("os.name").startsWith("Linux")
                && MallocPolicy.nothingAsked(System.getenv()), "glibc's defaults in this test JVM");
        MallocPolicy.beforeTraining();
        assertTrue(MallocPolicy.describe().contains("with fixed thresholds in training (mmap 32 MiB, trim 1024 MiB)"),
                MallocPolicy.describe());
    }

    @Test
    void glibcTakesTheThreshold() {
        org.junit.jupiter.api.Assumptions.assumeTrue(System.getProperty("os.name").startsWith("Linux"));
        // glibc's mallopt answers 1 for a parameter it took; setting its default dynamic threshold back is not
        // possible, so this sets a value this JVM's allocations are indifferent to (the largest glibc allows, 32 MiB).
        assertTrue(MemoryUse.mallopt(-3, 32 << 20), "glibc refused M_MMAP_THRESHOLD");
    }
}
