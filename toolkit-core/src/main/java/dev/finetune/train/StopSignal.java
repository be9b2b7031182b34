package dev.finetune.train;

import dev.finetune.ErrorKind;
import sun.misc.Signal;

/**
 * Ctrl-C and SIGTERM as a request to stop at the next step boundary, so the loop can write a resumable checkpoint
 * before exiting with 130 / 143. A second Ctrl-C while stopping ends the process at once.
 */
public final class StopSignal {
    private static volatile ErrorKind requested;
    private static volatile boolean installed;

    private StopSignal() {}

    /** Installs the INT and TERM handlers (once per JVM). */
    public static synchronized void install() {
        if (installed) {
            return;
        }
        installed = true;
        Signal.handle(new Signal("INT"), s -> request(ErrorKind.INTERRUPTED));
        Signal.handle(new Signal("TERM"), s -> request(ErrorKind.TERMINATED));
    }

    /** Asks the running loop to stop (what the handlers call; tests call it directly). */
    public static void request(ErrorKind why) {
        if (requested != null) {
            System.err.println("stopping now without waiting for the checkpoint");
            Runtime.getRuntime().halt(why.exitCode());
        }
        requested = why;
        System.err.println(System.lineSeparator() + (why == ErrorKind.INTERRUPTED ? "Ctrl-C" : "SIGTERM")
                + ": finishing the current step and writing a resumable checkpoint (Ctrl-C again to quit at once)");
    }

    /** The pending stop request, or null. */
    public static ErrorKind requested() {
        return requested;
    }

    /** Clears a handled request (tests, or a library caller that continues). */
    public static void clear() {
        requested = null;
    }
}
