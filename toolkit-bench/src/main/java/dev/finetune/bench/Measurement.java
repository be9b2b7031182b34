package dev.finetune.bench;

import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * The raw outcome of one workload at one input shape, as a child process reports it: every timed iteration, the work
 * per iteration, and memory.
 *
 * @param workload {@link Workload#configName()}, or the PyTorch script's workload name
 * @param side {@code ours}, {@code pytorch}
 * @param batch images per iteration
 * @param size input side
 * @param threads intra-op threads the engine used
 * @param timesMs wall time of each timed iteration (warm-up excluded), in order
 * @param flopsPerIteration conv+linear FLOPs of one iteration ({@link FlopCount}); 0 for the loader
 * @param setupRssKb resident memory after setup (model built, input created), before the first iteration
 * @param peakRssKb peak resident memory of the whole process (VmHWM) at the end
 * @param foreignCpuPercent CPU used by other processes during the timed iterations, percent of the machine
 * @param kernelCpuPercent share of this process's CPU time spent in the kernel during the timed iterations (page
 *     faults of freshly allocated buffers, mostly)
 * @param minorFaultsPerIteration minor page faults per timed iteration
 * @param stageMs per-stage median milliseconds when profiled, else null
 * @param opMs the ops with the most self time, milliseconds per iteration ({@link OpProfile}) when profiled, else null
 * @param error why the workload could not run, else null
 */
public record Measurement(
        String workload,
        String side,
        int batch,
        int size,
        int threads,
        List<Double> timesMs,
        long flopsPerIteration,
        long setupRssKb,
        long peakRssKb,
        double foreignCpuPercent,
        double kernelCpuPercent,
        long minorFaultsPerIteration,
        Map<String, Double> stageMs,
        Map<String, Double> opMs,
        String error) {

    /** A workload that could not run. */
    public static Measurement failed(String workload, String side, InputShape shape, int threads, String error) {
        return new Measurement(
                workload, side, shape.batch(), shape.size(), threads, List.of(), 0, 0, 0, 0, 0, 0, null, null, error);
    }

    public boolean ok() {
        return error == null && !timesMs.isEmpty();
    }

    /** The median of the timed iterations. */
    public double medianMs() {
        return median(timesMs);
    }

    /** Images per second at the median time. */
    public double imagesPerSecond() {
        return batch * 1000.0 / medianMs();
    }

    /** Achieved conv+linear GFLOP/s at the median time. */
    public double achievedGflops() {
        return flopsPerIteration / (medianMs() * 1e6);
    }

    /** The median of a list (mean of the middle two for an even count). */
    static double median(List<Double> values) {
        if (values.isEmpty()) {
            return Double.NaN;
        }
        double[] v = values.stream().mapToDouble(Double::doubleValue).toArray();
        Arrays.sort(v);
        int n = v.length;
        return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    }
}
