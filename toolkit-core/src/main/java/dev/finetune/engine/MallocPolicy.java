package dev.finetune.engine;

import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * The {@code finetune} launcher's opt-in malloc policy {@code FINETUNE_MALLOC=lean-steps}, finished at run time:
 * glibc's malloc keeps its own dynamic mmap threshold until the first training step whose autograd graph starts at
 * the network's input with a batch of {@value #LARGE_INPUT_MIB} MiB or more (ResNet-18 at batch 32 and 224 pixels in
 * float32: 19 MiB), and from then on gives every block of {@value #THRESHOLD_MIB} MiB or more its own mapping,
 * returned to the OS when freed — what {@code FINETUNE_MALLOC=lean} does from the start.
 *
 * <p>Why per step and not per process (docs/performance.md, 2026-12-05 sixth session; alternating runs of
 * {@code bench --iters 5}): such a step keeps the full-resolution maps of every block alive for its backward; with
 * glibc's defaults the 25.7 MB maps of ResNet-18's first stage at 32×224 come from the heap, which fragments around
 * them, and the step peaked at 1.53–1.95 GB (PyTorch 1.13: 1.52–1.60 GB). With the fixed threshold it peaked at
 * 1.15–1.22 GB at the same speed (2,233–2,354 ms against 2,271–2,353 ms). At batch 16 it saved 18–22 % of the peak
 * for 5–15 % more time, and everywhere else (inference, frozen prefixes, the last stage, 128×64, batch 8) it cost
 * up to 25 % in speed for 5–15 % less memory, so the cut is above batch 16 at 224 and the threshold goes back up
 * for a run's validation ({@link #beforeInference()}).
 *
 * <p>Not the default: whole training runs (Fashion-MNIST-10 at 112×112, batch 128, 25 steps and the validation per
 * epoch, three pairs alternating) trained 6–12 % slower with it (49.7–51.7 against 53.2–56.6 images/s; the bench's
 * step alone was not) for a 28 % lower peak (1,732–1,770 against 2,392–2,484 MiB); glibc's defaults keep the speed.
 *
 * <p>The mappings need transparent huge pages to be cheap (without them the page faults cost 25–35 % at 32×224), so
 * the launcher asks glibc for them ({@code GLIBC_TUNABLES=glibc.malloc.hugetlb=1}, which only takes effect at process
 * start) where the kernel offers them, and says so in {@code FINETUNE_MALLOC_SET}; this class acts only when it did.
 * An application embedding the toolkit gets the same by setting those three variables before it starts. Only where
 * blocks lie changes, never a value.
 *
 * <p>Under glibc's defaults (no {@code FINETUNE_MALLOC}) this class acts in one place only: around the fast-path
 * check ({@link #beforeCheck()}, {@link #afterCheck()}), whose float32 step set the peak of whole bf16-mixed runs.
 */
public final class MallocPolicy {
    /**
     * {@code FINETUNE_MALLOC=inference}, the launcher's choice for {@code evaluate} and {@code predict} when nothing is
     * asked (and not with {@code --no-fold-bn}): one malloc arena, no mappings, no trim. Each batch's activations then
     * reuse the blocks the last batch freed instead of mapping and faulting them in again (the activations of a 32×224
     * batch are 25–100 MB each, above glibc's largest dynamic mmap threshold, and a JVM's threads allocate from 64 MB
     * thread arenas that are unmapped as they empty, so all three settings are needed). Folded ResNet-18 inference at
     * 32×224 ran 522–543 ms against 606–669 ms at the same peak (551–583 against 563–622 MB, with the guard's order
     * and {@link #afterGuardedBatch}), and a {@code predict} of 700 images at 224 took 15.2–15.9 s against 16.3–18.0 s
     * for a 5–15 % higher, flat peak, identical predictions (docs/performance.md, 2026-12-06). The plain network
     * keeps every activation until its batch ends, so with it the peak rose 30–50 %: not for {@code --no-fold-bn}.
     * Only takes effect at process start (glibc fixes its arena limit when the first thread arena is made), hence
     * environment variables set by the launcher; an application embedding the toolkit sets them itself.
     */
    public static final Map<String, String> INFERENCE_VARIABLES = Map.of(
            "MALLOC_ARENA_MAX", "1", "MALLOC_MMAP_MAX_", "0", "MALLOC_TRIM_THRESHOLD_", "17179869184");

    /**
     * How many of an input shape's first batches through a guarded prefix (the check's included) are followed by
     * {@link #afterGuardedBatch}'s {@code malloc_trim}.
     */
    public static final int SETTLING_BATCHES = 3;

    /** Whether this process's heap never unmaps: one arena and no mappings, as {@link #INFERENCE_VARIABLES} set. */
    private static final boolean NEVER_UNMAPS = neverUnmaps(System.getenv());

    static boolean neverUnmaps(Map<String, String> environment) {
        return "1".equals(environment.get("MALLOC_ARENA_MAX")) && "0".equals(environment.get("MALLOC_MMAP_MAX_"));
    }

    /**
     * Called by a guarded prefix after the {@code n}-th batch (from 1; the check's is the first) of an input shape:
     * under a heap that never unmaps ({@code FINETUNE_MALLOC=inference} or {@code keep}), the first
     * {@value #SETTLING_BATCHES} give the heap's free pages back ({@code malloc_trim}). Those batches are where such a
     * heap fragments: what else the process allocates between their large blocks stays put, and in about one run in
     * five to seven the next batch's blocks no longer fit and the heap grew by 150–230 MB (folded inference at 32×224
     * peaked 732–790 MB against 555–598 MB). Trimmed, the holes no longer count: ten runs peaked 560–616 MB, at the same
     * speed (docs/performance.md, 2026-12-06). After them the heap is settled and nothing is trimmed, so later batches
     * keep reusing resident blocks.
     */
    public static void afterGuardedBatch(int n) {
        if (NEVER_UNMAPS && n <= SETTLING_BATCHES) {
            MemoryUse.releaseFreePages();
        }
    }

    /** The input size, in MiB, from which a full step's large blocks get their own mappings. */
    public static final int LARGE_INPUT_MIB = 16;

    /** The mmap threshold set then, in MiB: {@code FINETUNE_MALLOC=lean}'s, the best of 1–16 MiB measured. */
    public static final int THRESHOLD_MIB = 8;

    /** The policy's name in {@code FINETUNE_MALLOC}. */
    static final String NAME = "lean-steps";

    /** mallopt's parameter numbers for the mmap and trim thresholds (glibc's malloc.h). */
    private static final int M_MMAP_THRESHOLD = -3;
    private static final int M_TRIM_THRESHOLD = -1;

    /** The trim threshold after a fast-path check, in MiB: free memory at a heap's top kept up to this much. */
    public static final int AFTER_CHECK_TRIM_MIB = 1024;

    /**
     * Whether the fast-path check and training runs set thresholds: glibc's defaults as the launcher leaves them
     * ({@link #nothingAsked}); {@code FINETUNE_MALLOC=glibc} asks for glibc's own thresholds throughout, and the other
     * policies set their own.
     */
    private static final boolean AROUND_CHECK = nothingAsked(System.getenv());
    /** Whether a check has set them yet (for the run record). */
    private static final AtomicBoolean CHECKED = new AtomicBoolean();

    private static final boolean ON = applies(System.getenv());
    /** glibc's largest mmap threshold on 64-bit (HEAP_MAX_SIZE / 2), the end of its dynamic one. */
    private static final int INFERENCE_MIB = 32;

    /** Whether the low threshold is wanted now, and whether glibc ever took it (for the run record). */
    private static final AtomicBoolean LOW = new AtomicBoolean();
    private static final AtomicBoolean EVER = new AtomicBoolean();

    private MallocPolicy() {}

    /**
     * Whether {@code environment} is one the launcher prepared for this policy: {@code FINETUNE_MALLOC=lean-steps}
     * with huge pages for malloc's mappings set by it.
     */
    static boolean applies(Map<String, String> environment) {
        return NAME.equals(environment.get("FINETUNE_MALLOC"))
                && launcherVariables(environment).contains("GLIBC_TUNABLES")
                && environment.getOrDefault("GLIBC_TUNABLES", "").contains("glibc.malloc.hugetlb=1");
    }

    /** The variables the launcher set for {@code FINETUNE_MALLOC}, as its {@code FINETUNE_MALLOC_SET} names them. */
    public static java.util.List<String> launcherVariables(Map<String, String> environment) {
        String set = environment.get("FINETUNE_MALLOC_SET");
        return set == null || set.isBlank() ? java.util.List.of() : java.util.List.of(set.trim().split("\\s+"));
    }

    /** Whether a step whose graph starts at the input, with an input of {@code inputBytes}, wants the threshold. */
    static boolean wants(long inputBytes) {
        return inputBytes >= ((long) LARGE_INPUT_MIB << 20);
    }

    /**
     * Called by a training step whose autograd graph starts at the network's input: sets the threshold, the first
     * time the input is large enough and again after each {@link #beforeInference()}, where this policy is
     * on. Costs one comparison otherwise.
     */
    public static void beforeFullStep(long inputBytes) {
        if (ON && wants(inputBytes) && LOW.compareAndSet(false, true)) {
            if (MemoryUse.mallopt(M_MMAP_THRESHOLD, THRESHOLD_MIB << 20)) {
                EVER.set(true);
            }
        }
    }

    /**
     * Called before a training run's validation: a threshold set by a full step goes up to glibc's largest
     * ({@value #INFERENCE_MIB} MiB, where its dynamic one ends up with maps of that size), because inference and
     * frozen prefixes ran up to 25 % slower with the low one; the next full step lowers it again.
     */
    public static void beforeInference() {
        if (ON && LOW.compareAndSet(true, false)) {
            MemoryUse.mallopt(M_MMAP_THRESHOLD, INFERENCE_MIB << 20);
        }
    }

    /**
     * Whether {@code environment} asks nothing of glibc's malloc: {@code FINETUNE_MALLOC} unset (or empty), no
     * {@code MALLOC_*}, {@code GLIBC_TUNABLES} or {@code LD_PRELOAD} (another allocator, such as the tcmalloc the
     * launcher preloads when the system has it, {@link #preloaded}). There the launcher gives {@code evaluate} and
     * {@code predict} the {@link #INFERENCE_VARIABLES}, and the benchmark the workloads that stand for them.
     */
    public static boolean nothingAsked(Map<String, String> environment) {
        return environment.getOrDefault("FINETUNE_MALLOC", "").isEmpty() && !environment.containsKey("GLIBC_TUNABLES")
                && environment.getOrDefault("LD_PRELOAD", "").isBlank()
                && environment.keySet().stream().noneMatch(k -> k.startsWith("MALLOC_"));
    }

    /**
     * The allocator library {@code environment} preloads in place of glibc's malloc ({@code LD_PRELOAD} naming
     * tcmalloc, jemalloc or mimalloc), or empty. The launcher preloads gperftools' tcmalloc when the system has it;
     * glibc's {@code mallopt} and {@code malloc_trim} then act on a heap nothing allocates from.
     */
    public static java.util.Optional<String> preloaded(Map<String, String> environment) {
        for (String lib : environment.getOrDefault("LD_PRELOAD", "").split("[:\\s]+")) {
            String name = lib.substring(lib.lastIndexOf('/') + 1);
            if (name.contains("tcmalloc") || name.contains("jemalloc") || name.contains("mimalloc")) {
                return java.util.Optional.of(lib);
            }
        }
        return java.util.Optional.empty();
    }

    /**
     * Called before the fast-path check's first run ({@code FineTuner.checkedStep}: a shape's first step run the plain
     * float32 way and then the fast way, bf16-mixed or channels-last, and their gradients compared): blocks of
     * {@value #THRESHOLD_MIB} MiB or more get their own mappings until {@link #afterCheck()}. The check's float32 step
     * keeps every block's full-resolution maps for its backward, and with glibc's dynamic threshold they came from the
     * heap, which fragmented around them: at 32x224 the bf16-mixed step's check peaked 1,588-1,692 MB against 963-976
     * MB for PyTorch's autocast step; and in whole bf16-mixed runs at 128x112x112 the check set the run's peak
     * (docs/performance.md, 2026-12-05 eighth session).
     */
    public static void beforeCheck() {
        if (AROUND_CHECK && MemoryUse.mallopt(M_MMAP_THRESHOLD, THRESHOLD_MIB << 20)) {
            CHECKED.set(true);
        }
    }

    /**
     * Called when the check's two runs are done: the mmap threshold goes to {@value #INFERENCE_MIB} MiB (where glibc's
     * dynamic one ends up; once set, glibc's thresholds stay fixed) and the trim threshold to
     * {@value #AFTER_CHECK_TRIM_MIB} MiB, so the steps after the check neither map their blocks nor give the heap's
     * top back after every step: with the 64 MiB trim threshold that glibc's dynamic rule pairs with 32 MiB, the
     * steps after it ran 3-5 % slower at 128x64; with 1 GiB no slower than glibc's defaults (bench and whole runs).
     * The trainer's {@code malloc_trim} at the seams of validation still returns what the heap keeps.
     */
    public static void afterCheck() {
        if (AROUND_CHECK && CHECKED.get()) {
            fixThresholds();
        }
    }

    /** The mmap threshold at {@value #INFERENCE_MIB} MiB and the trim threshold at {@value #AFTER_CHECK_TRIM_MIB} MiB. */
    private static boolean fixThresholds() {
        return MemoryUse.mallopt(M_MMAP_THRESHOLD, INFERENCE_MIB << 20)
                && MemoryUse.mallopt(M_TRIM_THRESHOLD, AFTER_CHECK_TRIM_MIB << 20);
    }

    /** Whether {@link #beforeTraining()} set the thresholds (for the run record). */
    private static final AtomicBoolean TRAINING = new AtomicBoolean();

    /**
     * Called when a training run starts: under glibc's defaults as the launcher leaves them, the thresholds
     * {@link #afterCheck()} sets (mmap {@value #INFERENCE_MIB} MiB, trim {@value #AFTER_CHECK_TRIM_MIB} MiB) from the
     * first step on. With glibc's dynamic thresholds a run fell into one of two states at random: the last-stage
     * Fashion-MNIST run took 14–17 s or 23–36 s per epoch with identical losses, the slow runs with 20–42 M minor
     * page faults and 44–96 s of system CPU against 0.37 M and 2 s (the steps' freed blocks trimmed off the heap's top
     * and faulted in again every step); with these thresholds 3 of 3 runs were fast at the same peak
     * (docs/performance.md, 2026-12-06). The trainer's {@code malloc_trim} at epoch seams still returns what the heap
     * keeps.
     */
    public static void beforeTraining() {
        if (AROUND_CHECK && fixThresholds()) {
            TRAINING.set(true);
        }
    }

    /** One line for run records: the policy and whether the threshold is set yet. */
    public static String describe() {
        String policy = System.getenv("FINETUNE_MALLOC");
        java.util.Optional<String> lib = preloaded(System.getenv());
        if (lib.isPresent()) {
            return lib.get() + " in place of glibc's malloc (LD_PRELOAD"
                    + (launcherVariables(System.getenv()).contains("LD_PRELOAD") ? ", set by the launcher"
                            + (policy == null ? ": the default where the system has tcmalloc" : "") : "") + ")";
        }
        if (!ON) {
            if (policy == null) {
                return "glibc's defaults" + (TRAINING.get() ? " with fixed thresholds in training (mmap "
                        + INFERENCE_MIB + " MiB, trim " + AFTER_CHECK_TRIM_MIB + " MiB)" : "")
                        + (CHECKED.get() ? "; fast-path check with an mmap threshold of "
                        + THRESHOLD_MIB + " MiB, then " + INFERENCE_MIB + " MiB and a trim threshold of "
                        + AFTER_CHECK_TRIM_MIB + " MiB" : "");
            }
            if (NAME.equals(policy)) {
                return "FINETUNE_MALLOC=" + NAME + " not in effect (no transparent huge pages, or MALLOC_* or"
                        + " GLIBC_TUNABLES set by the user): glibc's defaults";
            }
            return "FINETUNE_MALLOC=" + policy + ("glibc".equals(policy) ? ": glibc's defaults" : "");
        }
        return "FINETUNE_MALLOC=" + NAME + ": huge pages for malloc's mappings; mmap threshold "
                + (EVER.get() ? THRESHOLD_MIB + " MiB in full steps (their input reached " + LARGE_INPUT_MIB + " MiB), "
                        + INFERENCE_MIB + " MiB in validation" : "glibc's own until a full step's input reaches "
                        + LARGE_INPUT_MIB + " MiB");
    }
}
