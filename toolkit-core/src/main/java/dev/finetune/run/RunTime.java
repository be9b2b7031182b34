package dev.finetune.run;

import dev.finetune.engine.MemoryUse;

/**
 * A run's wall time and peak memory over every process that trained it. A run stopped (Ctrl-C, SIGTERM, a crash) and
 * continued with {@code finetune train --resume} is one run: its summary adds up the segments' wall times and takes the
 * highest of their peaks, so that {@code summary.json}, the experiment table and the report give the whole run's cost,
 * not the last process's. Every checkpoint carries the figures up to its writing ({@code run_time} in its metadata);
 * the time a killed process spent after its last checkpoint is not counted (the resumed process redoes that work, and
 * its time is).
 *
 * @param seconds wall seconds of training (from the first step's setup to the end), all segments so far
 * @param peakRssBytes the highest peak resident memory of the segments, or -1 where the OS does not say
 * @param segments how many processes the two figures cover
 */
public record RunTime(double seconds, long peakRssBytes, int segments) {

    /**
     * The clock of this process's segment.
     *
     * @param earlier the figures of the segments before (from the checkpoint resumed), or null for a new run — and for
     *     a checkpoint written before checkpoints kept them, in which case only this process is counted
     */
    public static Clock start(RunTime earlier) {
        return new Clock(earlier, System.nanoTime());
    }

    /** Counts this process's wall time and peak memory on top of the earlier segments'. */
    public static final class Clock {
        private final RunTime earlier;
        private final long t0;

        private Clock(RunTime earlier, long t0) {
            this.earlier = earlier;
            this.t0 = t0;
        }

        /** The whole run's figures until now. */
        public RunTime now() {
            double s = (System.nanoTime() - t0) / 1e9;
            long peak = MemoryUse.peakRssBytes();
            if (earlier == null) {
                return new RunTime(s, peak, 1);
            }
            return new RunTime(earlier.seconds + s, Math.max(earlier.peakRssBytes, peak), earlier.segments + 1);
        }
    }
}
