package dev.finetune.engine;

/**
 * libtorch's own switch for transparent huge pages, {@code THP_MEM_ALLOC_ENABLE=1} in the environment: libtorch 2.x's
 * CPU allocator then aligns every buffer of 2 MiB or more to 2 MiB and advises the kernel to back it with huge pages
 * ({@code madvise(MADV_HUGEPAGE)}). It reads the variable once, at its first CPU allocation.
 *
 * <p>Opt-in, and left to the user, because it is a trade that depends on the run (measured side by side in
 * {@code docs/performance.md}, 2026-12-05): a full fine-tune step of ResNet-18 in a fresh process peaks 32 % lower at
 * 32×224 (1.86–1.92 GB to 1.28–1.31 GB, below PyTorch 1.13's 1.51–1.56 GB) with 90 % fewer page faults and the same
 * speed, but inference and partly frozen steps peak 5–35 % higher, and whole Fashion-MNIST training runs took 5–13 %
 * longer per epoch (with or without {@code malloc_trim} at epoch seams) for no lower peak RSS than the spread of
 * identical runs. No value changes, only where buffers lie
 * ({@code HugePagesTest}). Run records say whether it was on ({@link #describe()}).
 */
public final class HugePages {
    /** The environment variable libtorch reads. */
    public static final String VARIABLE = "THP_MEM_ALLOC_ENABLE";

    private HugePages() {}

    /** One line for run records: the variable as the environment sets it, and how much memory is in huge pages now. */
    public static String describe() {
        String set = System.getenv(VARIABLE);
        String what = set == null ? VARIABLE + " unset (off)" : VARIABLE + "=" + set;
        long huge = MemoryUse.anonHugePagesBytes();
        return what + (huge >= 0 ? String.format(java.util.Locale.ROOT, "; %d MiB in huge pages", huge >> 20) : "");
    }
}
