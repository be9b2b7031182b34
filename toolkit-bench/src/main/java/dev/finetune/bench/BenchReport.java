package dev.finetune.bench;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Everything one {@code finetune bench} run measured, with the comparisons and target checks derived from it.
 *
 * @param date ISO-8601 time the run started
 * @param machine the CPU and its peak estimate
 * @param engine the libtorch version DJL loaded
 * @param torchVersion PyTorch's version on the comparison side, or null without {@code --torch}
 * @param threads intra-op threads on both sides
 * @param iterations timed iterations per workload
 * @param warmup untimed iterations per workload
 * @param isolated whether each workload ran in its own process (peak RSS is per workload only then)
 * @param maxForeignLoad the CPU share (percent) other processes were allowed during a measurement
 * @param results our workloads (including the TorchScript ceiling), then PyTorch's
 * @param comparisons ours versus PyTorch and versus the TorchScript ceiling
 * @param targets the performance targets and whether they were met
 * @param notes anything that could not be measured, and why
 */
public record BenchReport(
        String date,
        MachineInfo machine,
        String engine,
        String torchVersion,
        int threads,
        int iterations,
        int warmup,
        boolean isolated,
        double maxForeignLoad,
        List<BenchResult> results,
        List<Comparison> comparisons,
        List<TargetCheck> targets,
        List<String> notes) {

    /**
     * One of ours against a reference doing the same work at the same shape.
     *
     * @param workload ours
     * @param reference {@code pytorch:<workload>} or {@code torchscript:<workload>}
     * @param shape {@code 32x224}
     * @param speedRatio our images/s ÷ the reference's (above 1: ours is faster)
     * @param rssRatio our peak RSS ÷ the reference's (above 1: ours uses more)
     */
    public record Comparison(String workload, String reference, String shape, double speedRatio, double rssRatio) {}

    /**
     * A stated performance target.
     *
     * @param target what is required
     * @param shape the input shape it was checked at
     * @param value the measured ratio
     * @param threshold the bound
     * @param met whether the measurement satisfies it
     */
    public record TargetCheck(String target, String shape, double value, double threshold, boolean met) {}

    /** A fixed-width text report. */
    public String toText() {
        StringBuilder b = new StringBuilder();
        b.append("machine: ").append(machine.describe()).append('\n');
        b.append("engine:  DJL PyTorch ").append(engine).append(", ").append(threads).append(" intra-op threads");
        if (torchVersion != null) {
            b.append("; PyTorch side: torch ").append(torchVersion).append(", ").append(threads).append(" threads");
        }
        b.append('\n');
        b.append(String.format(Locale.ROOT, "timing:  median of %d iterations after %d warm-up; %s; %s%n",
                iterations, warmup, isolated ? "each workload in a fresh process" : "all in this process",
                date));
        if (maxForeignLoad < 100) {
            b.append(String.format(Locale.ROOT, "load:    waited for an idle machine before each workload; repeated"
                    + " any run in which other processes used > %.0f%% of the CPU (column other%%)%n",
                    maxForeignLoad));
        }
        b.append("columns: GFLOP = conv+linear work per iteration; %peak of the AVX2-formula peak; kern% = share of the"
                + " process's CPU time in the kernel; faults = minor page faults per iteration\n");
        b.append(String.format(Locale.ROOT, "%n%-8s %-26s %-7s %9s %8s %6s %7s %6s %8s %7s %6s %6s %7s%n",
                "side", "workload", "shape", "median ms", "img/s", "GFLOP", "GFLOP/s", "%peak", "setup MB",
                "peak MB", "other%", "kern%", "faults"));
        for (BenchResult r : results) {
            if (!r.ok()) {
                b.append(String.format(Locale.ROOT, "%-8s %-26s %-7s FAILED: %s%n",
                        r.side(), r.workload(), r.shape(), r.error()));
                continue;
            }
            b.append(String.format(Locale.ROOT,
                    "%-8s %-26s %-7s %9.1f %8.1f %6.1f %7.1f %6.1f %8.0f %7.0f %6.1f %6.1f %6.0fk%n",
                    r.side(), r.workload(), r.shape(), r.medianMs(), r.imagesPerSecond(), r.gflopPerIteration(),
                    r.achievedGflops(), r.percentOfPeak(), r.setupRssMb(), r.peakRssMb(), r.foreignCpuPercent(),
                    r.kernelCpuPercent(), r.minorFaultsPerIteration() / 1000.0));
        }
        for (BenchResult r : results) {
            if (!r.stageMs().isEmpty()) {
                b.append(String.format(Locale.ROOT, "%nper-stage median ms, %s %s %s:", r.side(), r.workload(),
                        r.shape()));
                for (Map.Entry<String, Double> e : r.stageMs().entrySet()) {
                    b.append(String.format(Locale.ROOT, " %s %.1f", e.getKey(), e.getValue()));
                }
                b.append('\n');
            }
        }
        for (BenchResult r : results) {
            if (!r.opMs().isEmpty()) {
                b.append(String.format(Locale.ROOT, "%nop self time, ms per iteration (libtorch profiler), %s %s %s:%n",
                        r.side(), r.workload(), r.shape()));
                for (Map.Entry<String, Double> e : r.opMs().entrySet()) {
                    b.append(String.format(Locale.ROOT, "  %-40s %8.1f%n", e.getKey(), e.getValue()));
                }
            }
        }
        if (!comparisons.isEmpty()) {
            b.append(String.format(Locale.ROOT, "%n%-26s %-28s %-7s %12s %10s%n",
                    "ours", "versus", "shape", "speed ratio", "RSS ratio"));
            for (Comparison c : comparisons) {
                b.append(String.format(Locale.ROOT, "%-26s %-28s %-7s %12.2f %10.2f%n",
                        c.workload(), c.reference(), c.shape(), c.speedRatio(), c.rssRatio()));
            }
            b.append("(speed ratio = our images/s / theirs; RSS ratio = our peak RSS / theirs)\n");
        }
        if (!targets.isEmpty()) {
            b.append('\n');
            for (TargetCheck t : targets) {
                b.append(String.format(Locale.ROOT, "target %-66s %-7s %6.2f  %s%n",
                        t.target(), t.shape(), t.value(), t.met() ? "MET" : "MISSED"));
            }
        }
        for (String n : notes) {
            b.append("\nnote: ").append(n);
        }
        if (!notes.isEmpty()) {
            b.append('\n');
        }
        return b.toString();
    }

    /** Derives the comparisons: each of ours against PyTorch's counterpart and against the TorchScript ceiling. */
    static List<Comparison> compare(List<BenchResult> results) {
        List<Comparison> out = new ArrayList<>();
        for (BenchResult r : results) {
            if (!r.ok() || !r.side().equals("ours")) {
                continue;
            }
            Workload w = Workload.parse(r.workload());
            if (w.torchCounterpart() != null) {
                find(results, "pytorch", w.torchCounterpart(), r).ifPresent(t -> out.add(comparison(r, t)));
                find(results, "pytorch", w.torchCounterpart() + TorchSide.UNDER_OUR_ALLOCATOR, r)
                        .ifPresent(t -> out.add(comparison(r, t)));
            }
            if (w.foldedInference()) {
                find(results, "pytorch", TorchSide.INFERENCE_UNDER_OUR_POLICY, r)
                        .ifPresent(t -> out.add(comparison(r, t)));
            }
            String ceiling = switch (w) {
                case INFERENCE -> Workload.TORCHSCRIPT_INFERENCE.configName();
                case FULL_STEP -> Workload.TORCHSCRIPT_FULL_STEP.configName();
                default -> null;
            };
            if (ceiling != null) {
                find(results, "ours", ceiling, r).ifPresent(t -> out.add(comparison(r, t)));
            }
        }
        return out;
    }

    private static java.util.Optional<BenchResult> find(
            List<BenchResult> results, String side, String workload, BenchResult like) {
        return results.stream()
                .filter(o -> o.ok() && o.side().equals(side) && o.workload().equals(workload)
                        && o.batch() == like.batch() && o.size() == like.size())
                .findFirst();
    }

    private static Comparison comparison(BenchResult ours, BenchResult ref) {
        String refName = (ref.side().equals("pytorch") ? "pytorch:" : "torchscript:") + ref.workload();
        return new Comparison(ours.workload(), refName, ours.shape(),
                ours.imagesPerSecond() / ref.imagesPerSecond(), ours.peakRssMb() / ref.peakRssMb());
    }

    /**
     * The targets: the BN-folded frozen step at most 0.9× the time of a plain inference forward (each shape,
     * each folded variant), and the loader at least 3× the images/s a full fine-tune step consumes at 224.
     */
    static List<TargetCheck> targets(List<BenchResult> results) {
        List<TargetCheck> out = new ArrayList<>();
        for (BenchResult r : results) {
            if (!r.ok() || !r.side().equals("ours")) {
                continue;
            }
            if (r.workload().startsWith("frozen-step-folded")) {
                find(results, "ours", Workload.INFERENCE.configName(), r).ifPresent(inf -> {
                    double ratio = r.medianMs() / inf.medianMs();
                    out.add(new TargetCheck(r.workload() + " time <= 0.9x inference forward time", r.shape(), ratio,
                            0.9, ratio <= 0.9));
                });
            }
            if (r.workload().equals(Workload.LOADER.configName())) {
                results.stream()
                        .filter(o -> o.ok() && o.side().equals("ours")
                                && o.workload().equals(Workload.FULL_STEP.configName()) && o.size() == r.size())
                        .forEach(full -> {
                            double ratio = r.imagesPerSecond() / full.imagesPerSecond();
                            out.add(new TargetCheck("loader img/s >= 3x full-step img/s (full-step at "
                                    + full.shape() + ")", r.shape(), ratio, 3.0, ratio >= 3.0));
                        });
            }
        }
        return out;
    }
}
