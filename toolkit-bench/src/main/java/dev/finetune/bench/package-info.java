/**
 * Measuring what fine-tuning costs on this machine: {@code finetune bench}.
 *
 * <p>{@link dev.finetune.bench.Benchmark} runs each {@link dev.finetune.bench.Workload} (inference, a full fine-tune
 * step, a frozen-backbone step, a last-stage step, the frozen step with its backbone BN-folded, TorchScript's ceiling,
 * the data loader) at each {@link dev.finetune.bench.InputShape} in a fresh child JVM, so the peak resident memory of
 * one workload is not inflated by another, and reports the median time per iteration, images per second, achieved
 * GFLOP/s against the {@link dev.finetune.bench.MachineInfo machine's} peak estimate ({@link
 * dev.finetune.bench.FlopCount} counts the conv and linear work from the network's shapes) and, with PyTorch's side
 * (Debian's torch, {@code scripts/bench/torch_bench.py}), the ratios between the two. It waits for an idle machine
 * and repeats a measurement that other processes disturbed. Each of our workloads runs right next to its references
 * (the TorchScript graph, PyTorch's counterpart), so that a ratio compares the host at the same minutes; with
 * {@code --rounds N} the schedule repeats, alternating which side goes first, and each ratio is reported as the median
 * of its rounds with their range.
 *
 * <p>Every training workload is the library's own {@code FineTuner.trainStep}; the folded workloads only ask it for a
 * memory layout of its guarded, BN-folded prefix ({@link dev.finetune.model.GuardedPrefix}).
 *
 * <p>Nothing here is a test: timings depend on the machine and its load. The unit tests of this package check only
 * the deterministic parts (FLOP counts, folding equivalence). Results and method: {@code docs/performance.md}.
 */
package dev.finetune.bench;
