package dev.finetune.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;

/**
 * The CPU the benchmark ran on and its theoretical fp32 peak.
 *
 * <p>The peak is {@code cores × 2 FMA units × 8 lanes × 2 FLOP × clock}: two 256-bit (AVX2) FMA pipes per core. The
 * clock is lscpu's {@code CPU max MHz} when it reports one; virtual machines often hide it, and then the
 * {@code cpu MHz} of {@code /proc/cpuinfo} (the nominal or current clock) is used — {@link #clockSource} says which.
 * A CPU with AVX-512 and full-width 512-bit FMA units (Zen 5, most Xeons) can do 16 lanes per FMA, twice the AVX2
 * figure; {@link #peakGflopsAvx512} is that estimate, null without {@code avx512f}. Turbo clocks can exceed both.
 *
 * @param modelName lscpu's "Model name" ({@code model name} of /proc/cpuinfo)
 * @param cores logical CPUs available to this JVM
 * @param clockMhz the clock used for the peak
 * @param clockSource where the clock came from
 * @param peakGflops cores × 2 × 8 × 2 × GHz
 * @param peakGflopsAvx512 cores × 2 × 16 × 2 × GHz if the CPU reports avx512f, else null
 */
public record MachineInfo(
        String modelName,
        int cores,
        double clockMhz,
        String clockSource,
        double peakGflops,
        Double peakGflopsAvx512) {

    /** Reads the running machine. */
    public static MachineInfo current() {
        int cores = Runtime.getRuntime().availableProcessors();
        String model = "unknown";
        double cpuinfoMhz = 0;
        boolean avx512 = false;
        for (String line : lines(Path.of("/proc/cpuinfo"))) {
            String key = line.contains(":") ? line.substring(0, line.indexOf(':')).trim() : "";
            String value = line.contains(":") ? line.substring(line.indexOf(':') + 1).trim() : "";
            if (key.equals("model name") && model.equals("unknown")) {
                model = value;
            } else if (key.equals("cpu MHz") && cpuinfoMhz == 0) {
                cpuinfoMhz = parse(value);
            } else if (key.equals("flags")) {
                avx512 |= (" " + value + " ").contains(" avx512f ");
            }
        }
        double mhz = 0;
        String source = null;
        for (String line : lscpu()) {
            if (line.startsWith("CPU max MHz:")) {
                mhz = parse(line.substring(line.indexOf(':') + 1).trim());
                source = "lscpu 'CPU max MHz'";
            }
        }
        if (mhz <= 0) {
            mhz = cpuinfoMhz;
            source = "/proc/cpuinfo 'cpu MHz' (lscpu reports no max MHz)";
        }
        double ghz = mhz / 1000.0;
        return new MachineInfo(
                model, cores, mhz, source, cores * 2 * 8 * 2 * ghz, avx512 ? cores * 2 * 16 * 2 * ghz : null);
    }

    private static double parse(String v) {
        try {
            return Double.parseDouble(v.replace(',', '.'));
        } catch (NumberFormatException e) {
            return 0;
        }
    }

    private static List<String> lines(Path p) {
        try {
            return Files.readAllLines(p);
        } catch (IOException e) {
            return List.of();
        }
    }

    private static List<String> lscpu() {
        try {
            Process p = new ProcessBuilder("lscpu").redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes());
            if (!p.waitFor(10, TimeUnit.SECONDS)) {
                p.destroy();
                return List.of();
            }
            return out.lines().map(String::trim).toList();
        } catch (IOException e) {
            return List.of();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return List.of();
        }
    }

    /** One line for reports. */
    public String describe() {
        return String.format(Locale.ROOT, "%s, %d cores, %.0f MHz (%s); fp32 peak %.0f GFLOP/s (AVX2 formula)%s",
                modelName, cores, clockMhz, clockSource, peakGflops,
                peakGflopsAvx512 == null ? "" : String.format(Locale.ROOT, ", %.0f GFLOP/s with 512-bit FMA",
                        peakGflopsAvx512));
    }
}
