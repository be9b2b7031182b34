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

    @Test
    void foldedInferenceRunsAsEvaluateAndPredictDo() {
        Map<String, String> vars = dev.finetune.engine.MallocPolicy.INFERENCE_VARIABLES;
        for (Workload w : List.of(Workload.INFERENCE_FOLDED, Workload.INFERENCE_FOLDED_OPS, Workload.INFERENCE_BF16)) {
            assertEquals(vars, ChildJvm.environment(w, Map.of("PATH", "/usr/bin")), w.configName());
            assertEquals(Map.of(), ChildJvm.environment(w, Map.of("FINETUNE_MALLOC", "glibc")), "glibc asked for");
            assertEquals(Map.of(), ChildJvm.environment(w, Map.of("MALLOC_ARENA_MAX", "2")), "the user's own");
        }
        for (Workload w : List.of(Workload.INFERENCE, Workload.INFERENCE_SCOPED, Workload.FULL_STEP,
                Workload.FROZEN_STEP_FOLDED_CL, Workload.TORCHSCRIPT_INFERENCE)) {
            assertEquals(Map.of(), ChildJvm.environment(w, Map.of()), w.configName() + ": glibc's defaults");
        }
        String note = Allocator.describeInferencePolicy(List.of("inference-folded", "inference-bf16"), true);
        assertTrue(note.startsWith("allocator: inference-folded, inference-bf16 ran under MALLOC_ARENA_MAX=1"
                + " MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=17179869184 (FINETUNE_MALLOC=inference"), note);
        assertTrue(note.endsWith("its inference again under the same settings as inference-malloc"), note);
    }

    @Test
    void foldedInferenceIsComparedWithPyTorchBothWays() {
        List<BenchResult> results = List.of(
                result("inference-folded", "ours", 500), result("inference", "pytorch", 900),
                result("inference-malloc", "pytorch", 700), result("full-step", "ours", 2000));
        List<BenchReport.Comparison> c = BenchReport.compare(results);
        assertEquals(List.of("pytorch:inference", "pytorch:inference-malloc"),
                c.stream().map(BenchReport.Comparison::reference).toList());
        assertEquals(900.0 / 500, c.get(0).speedRatio(), 1e-9);
        assertEquals(700.0 / 500, c.get(1).speedRatio(), 1e-9);
    }

    @Test
    void theLaunchersTcmallocIsNamedAndPyTorchRunsBothWithoutAndWithIt() {
        Map<String, String> tc = Map.of("FINETUNE_MALLOC_SET", "LD_PRELOAD TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD",
                "LD_PRELOAD", "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4",
                "TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD", "1099511627776");
        assertEquals(new java.util.TreeMap<>(tc).tailMap("LD_PRELOAD"), Allocator.preloadedByLauncher(tc));
        assertEquals("allocator: our side ran with LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4"
                + " TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD=1099511627776 (the launcher's default where the system has"
                + " tcmalloc); PyTorch's side with glibc's defaults, and again with our side's allocator (workloads"
                + " ending in +our-malloc)", Allocator.describe(tc, true).orElseThrow());
        for (Workload w : List.of(Workload.INFERENCE_FOLDED, Workload.FULL_STEP)) {
            assertEquals(Map.of(), ChildJvm.environment(w, tc), "no glibc settings under tcmalloc: " + w);
        }
        assertEquals(Map.of(), Allocator.preloadedByLauncher(Map.of("LD_PRELOAD", "/x/libtcmalloc.so.4")),
                "the user's own preload is theirs: PyTorch's side keeps it too");
        assertEquals(Map.of(), Allocator.preloadedByLauncher(Map.of()));

        assertEquals(Optional.empty(), Allocator.withoutTcmalloc(tc, "Linux"), "it ran on tcmalloc");
        assertEquals(Optional.empty(), Allocator.withoutTcmalloc(Map.of("FINETUNE_MALLOC", "glibc"), "Linux"),
                "glibc asked for by name");
        assertEquals(Optional.empty(), Allocator.withoutTcmalloc(Map.of(), "Mac OS X"), "no tcmalloc to preload");
        assertTrue(Allocator.withoutTcmalloc(Map.of("PATH", "/usr/bin"), "Linux").orElseThrow()
                .contains("the launcher found no tcmalloc on this system (Debian/Ubuntu: apt-get install"
                        + " libtcmalloc-minimal4)"));

        List<BenchResult> results = List.of(result("full-step", "ours", 2000), result("full-step", "pytorch", 2400),
                result("full-step+our-malloc", "pytorch", 2100));
        assertEquals(List.of("pytorch:full-step", "pytorch:full-step+our-malloc"),
                BenchReport.compare(results).stream().map(BenchReport.Comparison::reference).toList());
    }

    private static BenchResult result(String workload, String side, double ms) {
        Measurement m = new Measurement(workload, side, 32, 224, 2, List.of(ms), 1, 100_000, 500_000, 0, 0, 0,
                null, null, null);
        return BenchResult.of(m, workload, 100);
    }
}
