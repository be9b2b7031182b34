package dev.finetune.bench;

import java.util.Collections;
import java.util.List;
import java.util.Map;

/**
 * One row of the report: a {@link Measurement} summarized.
 *
 * @param workload workload name
 * @param description what it does
 * @param side {@code ours} or {@code pytorch}
 * @param batch images per iteration
 * @param size input side
 * @param threads intra-op threads
 * @param iterations timed iterations
 * @param medianMs median time per iteration
 * @param minMs fastest iteration
 * @param maxMs slowest iteration
 * @param imagesPerSecond batch / median time
 * @param gflopPerIteration conv+linear GFLOP per iteration ({@link FlopCount})
 * @param achievedGflops GFLOP per iteration / median time
 * @param percentOfPeak achieved / the machine's fp32 peak (AVX2 formula), in percent
 * @param setupRssMb resident memory after set-up, MiB
 * @param peakRssMb peak resident memory of the process, MiB
 * @param foreignCpuPercent CPU other processes used during the timed iterations, percent of the machine
 * @param kernelCpuPercent share of the process's own CPU time spent in the kernel while timed
 * @param minorFaultsPerIteration minor page faults per timed iteration
 * @param stageMs per-stage median ms when profiled, else empty
 * @param opMs ops with the most self time, ms per iteration, when profiled, else empty
 * @param error why it could not run, else null
 */
public record BenchResult(
        String workload,
        String description,
        String side,
        int batch,
        int size,
        int threads,
        int iterations,
        double medianMs,
        double minMs,
        double maxMs,
        double imagesPerSecond,
        double gflopPerIteration,
        double achievedGflops,
        double percentOfPeak,
        double setupRssMb,
        double peakRssMb,
        double foreignCpuPercent,
        double kernelCpuPercent,
        long minorFaultsPerIteration,
        Map<String, Double> stageMs,
        Map<String, Double> opMs,
        String error) {

    /** Summarizes {@code m}; {@code peakGflops} is the machine's estimate. */
    public static BenchResult of(Measurement m, String description, double peakGflops) {
        boolean ok = m.ok();
        double min = ok ? m.timesMs().stream().mapToDouble(Double::doubleValue).min().orElse(Double.NaN) : Double.NaN;
        double max = ok ? m.timesMs().stream().mapToDouble(Double::doubleValue).max().orElse(Double.NaN) : Double.NaN;
        double gflops = ok && m.flopsPerIteration() > 0 ? m.achievedGflops() : 0;
        return new BenchResult(
                m.workload(), description, m.side(), m.batch(), m.size(), m.threads(), m.timesMs().size(),
                ok ? m.medianMs() : Double.NaN, min, max, ok ? m.imagesPerSecond() : Double.NaN,
                m.flopsPerIteration() / 1e9, gflops, 100 * gflops / peakGflops,
                m.setupRssKb() / 1024.0, m.peakRssKb() / 1024.0, m.foreignCpuPercent(),
                m.kernelCpuPercent(), m.minorFaultsPerIteration(),
                m.stageMs() == null ? Map.of() : Collections.unmodifiableMap(m.stageMs()),
                m.opMs() == null ? Map.of() : Collections.unmodifiableMap(m.opMs()), m.error());
    }

    /**
     * One row for the same workload measured in several rounds ({@code --rounds}): the median of the rounds' median
     * times (images/s and GFLOP/s follow it), the fastest and slowest iteration of all, the median of the rounds' peak
     * and set-up RSS, kernel share and faults, the most any round saw of other processes; the first profile. Rounds
     * that failed are left out unless all did.
     */
    public static BenchResult overRounds(List<Measurement> rounds, String description, double peakGflops) {
        List<Measurement> ok = rounds.stream().filter(Measurement::ok).toList();
        if (rounds.size() == 1 || ok.isEmpty()) {
            return of(rounds.get(0), description, peakGflops);
        }
        if (ok.size() == 1) {
            return of(ok.get(0), description, peakGflops);
        }
        Measurement first = ok.get(0);
        double median = Measurement.median(ok.stream().map(Measurement::medianMs).toList());
        double gflops = first.flopsPerIteration() > 0 ? first.flopsPerIteration() / (median * 1e6) : 0;
        List<Double> all = ok.stream().flatMap(m -> m.timesMs().stream()).toList();
        Map<String, Double> stages = ok.stream().map(Measurement::stageMs).filter(java.util.Objects::nonNull)
                .findFirst().orElse(Map.of());
        Map<String, Double> ops = ok.stream().map(Measurement::opMs).filter(java.util.Objects::nonNull)
                .findFirst().orElse(Map.of());
        return new BenchResult(first.workload(), description, first.side(), first.batch(), first.size(),
                first.threads(), all.size(), median, Collections.min(all), Collections.max(all),
                first.batch() * 1000.0 / median, first.flopsPerIteration() / 1e9, gflops, 100 * gflops / peakGflops,
                medianOf(ok, m -> m.setupRssKb() / 1024.0), medianOf(ok, m -> m.peakRssKb() / 1024.0),
                ok.stream().mapToDouble(Measurement::foreignCpuPercent).max().orElse(0),
                medianOf(ok, Measurement::kernelCpuPercent),
                Math.round(medianOf(ok, m -> (double) m.minorFaultsPerIteration())),
                Collections.unmodifiableMap(stages), Collections.unmodifiableMap(ops), null);
    }

    private static double medianOf(List<Measurement> ms, java.util.function.ToDoubleFunction<Measurement> f) {
        return Measurement.median(ms.stream().map(m -> f.applyAsDouble(m)).toList());
    }

    public boolean ok() {
        return error == null && !Double.isNaN(medianMs);
    }

    /** {@code 32x224}. */
    public String shape() {
        return batch + "x" + size;
    }
}
