package dev.finetune.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/** The bench names the malloc settings each side ran with, and PyTorch's side runs without the launcher's. */
class AllocatorTest {
    @Test
    void glibcDefaultsNeedNoNote() {
        assertEquals(Optional.empty(), Allocator.describe(Map.of("PATH", "/usr/bin", "FINETUNE_MALLOC", "lean"), true));
        assertEquals(List.of(), Allocator.launcherVariables(Map.of()));
    }

    @Test
    void theLauncherPolicyIsOursAlone() {
        Map<String, String> lean = Map.of("FINETUNE_MALLOC", "lean",
                "FINETUNE_MALLOC_SET", "MALLOC_MMAP_THRESHOLD_ GLIBC_TUNABLES",
                "MALLOC_MMAP_THRESHOLD_", "8388608", "GLIBC_TUNABLES", "glibc.malloc.hugetlb=1");
        assertEquals(List.of("MALLOC_MMAP_THRESHOLD_", "GLIBC_TUNABLES"), Allocator.launcherVariables(lean));
        assertEquals("allocator: our side ran with GLIBC_TUNABLES=glibc.malloc.hugetlb=1 MALLOC_MMAP_THRESHOLD_=8388608"
                + " (FINETUNE_MALLOC=lean); PyTorch's side with glibc's defaults",
                Allocator.describe(lean, true).orElseThrow());
        assertEquals("allocator: our side ran with GLIBC_TUNABLES=glibc.malloc.hugetlb=1 MALLOC_MMAP_THRESHOLD_=8388608"
                + " (FINETUNE_MALLOC=lean)", Allocator.describe(lean, false).orElseThrow());
    }

    @Test
    void theRunTimeHalfOfLeanStepsIsNamed() {
        Map<String, String> steps = Map.of("FINETUNE_MALLOC", "lean-steps", "FINETUNE_MALLOC_SET", "GLIBC_TUNABLES",
                "GLIBC_TUNABLES", "glibc.malloc.hugetlb=1");
        assertEquals("allocator: our side ran with GLIBC_TUNABLES=glibc.malloc.hugetlb=1 (FINETUNE_MALLOC=lean-steps:"
                + " 8 MiB mmap threshold from the first full step with an input of 16 MiB or more); PyTorch's side with"
                + " glibc's defaults", Allocator.describe(steps, true).orElseThrow());
    }

    @Test
    void settingsOfTheUsersOwnReachBothSides() {
        String note = Allocator.describe(Map.of("MALLOC_ARENA_MAX", "2"), true).orElseThrow();
        assertTrue(note.endsWith("; PyTorch's side with MALLOC_ARENA_MAX as well"), note);
    }
}
