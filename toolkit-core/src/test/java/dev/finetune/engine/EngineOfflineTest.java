package dev.finetune.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** The engine starts from the jars on the classpath without attempting any network access. */
class EngineOfflineTest {
    private static String probe(String... args) throws Exception {
        List<String> cmd = new java.util.ArrayList<>(List.of(
                Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Djava.security.manager=allow", "-cp", System.getProperty("java.class.path"),
                NoNetworkProbe.class.getName()));
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        assertTrue(p.waitFor(120, TimeUnit.SECONDS));
        assertEquals(0, p.exitValue(), out);
        return out;
    }

    @Test
    void theGuardSeesConnectionAttempts() throws Exception {
        assertTrue(probe("--control").contains("NETWORK ATTEMPT: connect 127.0.0.1:9"));
    }

    @Test
    void engineStartsWithNoNetworkAttempt() throws Exception {
        String out = probe();
        assertFalse(out.contains("NETWORK ATTEMPT"), out);
        assertTrue(out.contains("engine PyTorch 2.7.1 sum 4.0"), out);
    }

    @Test
    void gradModeIsPerThreadAndRestored() throws Exception {
        Engines.pytorch();
        boolean before = Engines.isGradEnabled();
        try (Engines.NoGrad g = Engines.noGrad()) {
            assertFalse(Engines.isGradEnabled());
            boolean[] other = new boolean[1];
            Thread t = new Thread(() -> {
                ai.djl.pytorch.jni.JniUtils.setGradMode(true);
                other[0] = Engines.isGradEnabled();
            });
            t.start();
            t.join();
            assertTrue(other[0], "another thread's grad mode is its own");
            assertFalse(Engines.isGradEnabled(), "this thread's stays off");
        }
        assertEquals(before, Engines.isGradEnabled());
    }
}
