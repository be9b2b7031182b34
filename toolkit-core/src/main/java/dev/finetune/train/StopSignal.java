package dev.finetune.train;

import dev.finetune.ErrorKind;
import dev.finetune.FinetuneException;
import sun.misc.Signal;

/**
 * Ctrl-C and SIGTERM as a request to stop at the next step boundary, so the loop can write a resumable checkpoint
 * before exiting with 130 / 143. A second Ctrl-C while stopping ends the process at once; a SIGTERM while stopping is
 * ignored, so that one stop that arrives twice (a Ctrl-C that reaches the whole process group, and the same stop
 * forwarded by a parent such as {@code finetune experiment}, or systemd's SIGTERM to every process of a service) still
 * ends with the checkpoint.
 */
public final class StopSignal {
    private static volatile ErrorKind requested;
    private static volatile boolean installed;

    private StopSignal() {}

    private static volatile String onStop = "finishing the current step and writing a resumable checkpoint";

    /** Installs the handlers for training: stop at the next step boundary with a resumable checkpoint. */
    public static synchronized void install() {
        install("finishing the current step and writing a resumable checkpoint");
    }

    /**
     * Installs the INT and TERM handlers (once per JVM) for a command that stops at its next boundary, saying
     * {@code onStop} when asked to. Without them the JVM exits at once while libtorch may be in the middle of an op.
     */
    public static synchronized void install(String whatHappens) {
        onStop = whatHappens;
        if (installed) {
            return;
        }
        installed = true;
        Signal.handle(new Signal("INT"), s -> request(ErrorKind.INTERRUPTED));
        Signal.handle(new Signal("TERM"), s -> request(ErrorKind.TERMINATED));
    }

    /** Asks the running loop to stop (what the handlers call; tests call it directly). */
    public static void request(ErrorKind why) {
        if (requested != null && why == ErrorKind.TERMINATED) {
            return;
        }
        if (requested != null) {
            System.err.println("stopping now without waiting for the checkpoint");
            Runtime.getRuntime().halt(why.exitCode());
        }
        requested = why;
        System.err.println(System.lineSeparator() + (why == ErrorKind.INTERRUPTED ? "Ctrl-C" : "SIGTERM")
                + ": " + onStop + " (Ctrl-C again to quit at once)");
    }

    /** The pending stop request, or null. */
    public static ErrorKind requested() {
        return requested;
    }

    /**
     * Ends {@code what} (e.g. "evaluation") with exit 130 / 143 if a stop was requested: the orderly stop of a command
     * that has nothing to save.
     */
    public static void throwIfRequested(String what) {
        ErrorKind why = requested;
        if (why != null) {
            throw new FinetuneException(why, what + " " + (why == ErrorKind.INTERRUPTED ? "interrupted" : "terminated")
                    + "; nothing was written");
        }
    }

    /** Clears a handled request (tests, or a library caller that continues). */
    public static void clear() {
        requested = null;
    }
}
