package dev.finetune.engine;

import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * The {@code finetune} launcher's default malloc policy, {@code FINETUNE_MALLOC=auto}, finished at run time: glibc's
 * malloc keeps its own dynamic mmap threshold until the first training step whose autograd graph starts at the
 * network's input with a batch of {@value #LARGE_INPUT_MIB} MiB or more (ResNet-18 at batch 32 and 224 pixels in
 * float32: 19 MiB), and from then on gives every block of {@value #THRESHOLD_MIB} MiB or more its own mapping,
 * returned to the OS when freed — what {@code FINETUNE_MALLOC=lean} does from the start.
 *
 * <p>Why per step and not per process (docs/performance.md, 2026-12-05 sixth session; alternating runs of
 * {@code bench --iters 5}): such a step keeps the full-resolution maps of every block alive for its backward; with
 * glibc's defaults the 25.7 MB maps of ResNet-18's first stage at 32×224 come from the heap, which fragments around
 * them, and the step peaked at 1.53–1.95 GB (PyTorch 1.13: 1.52–1.60 GB). With the fixed threshold it peaked at
 * 1.15–1.22 GB at the same speed (2,233–2,354 ms against 2,271–2,353 ms). At batch 16 it saved 18–22 % of the peak
 * for 5–15 % more time, and everywhere else (inference, frozen prefixes, the last stage, 128×64, batch 8) it cost
 * 2–40 % in speed for little memory, so the cut is above batch 16 at 224 and the policy never trades speed away.
 *
 * <p>The mappings need transparent huge pages to be cheap (without them the page faults cost 25–35 % at 32×224), so
 * the launcher asks glibc for them ({@code GLIBC_TUNABLES=glibc.malloc.hugetlb=1}, which only takes effect at process
 * start) where the kernel offers them, and says so in {@code FINETUNE_MALLOC_SET}; this class acts only when it did.
 * An application embedding the toolkit gets the same by setting those three variables before it starts. Only where
 * blocks lie changes, never a value.
 */
public final class MallocPolicy {
    /** The input size, in MiB, from which a full step's large blocks get their own mappings. */
    public static final int LARGE_INPUT_MIB = 16;

    /** The mmap threshold set then, in MiB: {@code FINETUNE_MALLOC=lean}'s, the best of 1–16 MiB measured. */
    public static final int THRESHOLD_MIB = 8;

    /** mallopt's parameter number for the mmap threshold (glibc's malloc.h). */
    private static final int M_MMAP_THRESHOLD = -3;

    private static final boolean AUTO = applies(System.getenv());
    private static final AtomicBoolean SET = new AtomicBoolean();

    private MallocPolicy() {}

    /**
     * Whether {@code environment} is one the launcher prepared for the automatic policy: {@code FINETUNE_MALLOC=auto}
     * with huge pages for malloc's mappings set by it.
     */
    static boolean applies(Map<String, String> environment) {
        String set = environment.getOrDefault("FINETUNE_MALLOC_SET", "");
        return "auto".equals(environment.get("FINETUNE_MALLOC"))
                && java.util.List.of(set.trim().split("\\s+")).contains("GLIBC_TUNABLES")
                && environment.getOrDefault("GLIBC_TUNABLES", "").contains("glibc.malloc.hugetlb=1");
    }

    /** Whether a step whose graph starts at the input, with an input of {@code inputBytes}, wants the threshold. */
    static boolean wants(long inputBytes) {
        return inputBytes >= ((long) LARGE_INPUT_MIB << 20);
    }

    /**
     * Called by a training step whose autograd graph starts at the network's input; sets the threshold once, the
     * first time the input is large enough, where the automatic policy is on. Costs one comparison otherwise.
     */
    public static void beforeFullStep(long inputBytes) {
        if (AUTO && !SET.get() && wants(inputBytes) && SET.compareAndSet(false, true)) {
            MemoryUse.mallopt(M_MMAP_THRESHOLD, THRESHOLD_MIB << 20);
        }
    }

    /** Whether this process has set the threshold (for run records and tests). */
    public static boolean thresholdSet() {
        return SET.get();
    }

    /** One line for run records: the policy and whether the threshold is set yet. */
    public static String describe() {
        String policy = System.getenv("FINETUNE_MALLOC");
        if (!AUTO) {
            if (policy == null) {
                return "glibc's defaults (not started by the finetune launcher)";
            }
            return "auto".equals(policy) ? "FINETUNE_MALLOC=auto not in effect (no transparent huge pages, or MALLOC_*"
                    + " or GLIBC_TUNABLES set by the user): glibc's defaults" : "FINETUNE_MALLOC=" + policy;
        }
        return "FINETUNE_MALLOC=auto: huge pages for malloc's mappings; mmap threshold "
                + (SET.get() ? THRESHOLD_MIB + " MiB (a full step's input reached " + LARGE_INPUT_MIB + " MiB)"
                        : "glibc's own until a full step's input reaches " + LARGE_INPUT_MIB + " MiB");
    }
}
