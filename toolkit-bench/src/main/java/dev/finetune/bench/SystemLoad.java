package dev.finetune.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.function.Consumer;

/**
 * How busy the machine is apart from us, from {@code /proc/stat} (all CPUs) and {@code /proc/self/stat} (this
 * process, every thread): a benchmark that shares two cores with a training job measures the job, not the code. A
 * child process records the foreign load over its timed region ({@link Measurement#foreignCpuPercent()}); the parent
 * waits for an idle machine before each child and repeats a measurement that was disturbed.
 */
final class SystemLoad {
    private SystemLoad() {}

    /**
     * Counters at one instant: machine-wide busy and total CPU ticks, this process's user and kernel ticks, and its
     * minor page faults.
     */
    record Snapshot(long busyTicks, long totalTicks, long ownUserTicks, long ownSystemTicks, long minorFaults) {
        long ownTicks() {
            return ownUserTicks + ownSystemTicks;
        }
    }

    static Snapshot now() {
        long busy = 0;
        long total = 0;
        try {
            String cpu = Files.readAllLines(Path.of("/proc/stat")).get(0);
            String[] f = cpu.trim().split("\\s+");
            // cpu user nice system idle iowait irq softirq steal ...
            for (int i = 1; i < f.length && i <= 8; i++) {
                long v = Long.parseLong(f[i]);
                total += v;
                if (i != 4 && i != 5) {
                    busy += v;
                }
            }
            String self = Files.readString(Path.of("/proc/self/stat"));
            // Fields after the parenthesised command name.
            String[] g = self.substring(self.lastIndexOf(')') + 2).trim().split("\\s+");
            // g[0] is field 3 (state): minflt is field 10, utime 14, stime 15.
            return new Snapshot(busy, total, Long.parseLong(g[11]), Long.parseLong(g[12]), Long.parseLong(g[7]));
        } catch (IOException | RuntimeException e) {
            return new Snapshot(0, 0, 0, 0, 0);
        }
    }

    /** Percent of this process's CPU time spent in the kernel between two snapshots. */
    static double kernelPercent(Snapshot from, Snapshot to) {
        long own = to.ownTicks() - from.ownTicks();
        return own <= 0 ? 0 : 100.0 * (to.ownSystemTicks() - from.ownSystemTicks()) / own;
    }

    /** Percent of the machine's CPU capacity used by other processes between two snapshots (0 without procfs). */
    static double foreignPercent(Snapshot from, Snapshot to) {
        long total = to.totalTicks() - from.totalTicks();
        if (total <= 0) {
            return 0;
        }
        long foreign = (to.busyTicks() - from.busyTicks()) - (to.ownTicks() - from.ownTicks());
        return Math.max(0, 100.0 * foreign / total);
    }

    /** Percent of the machine's CPU capacity in use (by anyone) over {@code millis}. */
    static double busyPercent(long millis) throws InterruptedException {
        Snapshot a = now();
        Thread.sleep(millis);
        Snapshot b = now();
        long total = b.totalTicks() - a.totalTicks();
        return total <= 0 ? 0 : 100.0 * (b.busyTicks() - a.busyTicks()) / total;
    }

    /**
     * Waits until the machine is below {@code thresholdPercent} busy over a 2-second window, checking every 10 s, for
     * at most {@code maxWaitMillis}. Returns whether it became idle.
     */
    static boolean waitUntilIdle(double thresholdPercent, long maxWaitMillis, Consumer<String> progress) {
        long deadline = System.currentTimeMillis() + maxWaitMillis;
        boolean told = false;
        try {
            while (true) {
                double busy = busyPercent(2000);
                if (busy <= thresholdPercent) {
                    return true;
                }
                if (System.currentTimeMillis() > deadline) {
                    return false;
                }
                if (!told) {
                    progress.accept(String.format(Locale.ROOT,
                            "machine %.0f%% busy with other processes; waiting for it to go idle", busy));
                    told = true;
                }
                Thread.sleep(8000);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }
}
