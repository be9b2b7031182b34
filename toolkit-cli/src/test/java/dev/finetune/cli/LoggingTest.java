package dev.finetune.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The engine's logging goes through a real binding: warnings only by default (and none a CPU user cannot act on), its
 * informational messages with {@code --verbose}; SLF4J itself never complains about its set-up.
 */
class LoggingTest {
    @TempDir
    Path tmp;

    @Test
    void quietByDefaultInformativeWithVerbose() throws Exception {
        String model = Cli.repo().resolve("models/resnet18-fmnist-a.safetensors").toString();
        String quiet = run("quiet.log", "checkpoint", "inspect", model);
        assertFalse(quiet.contains("SLF4J"), quiet);
        assertFalse(quiet.contains("[INFO]"), quiet);
        assertFalse(quiet.contains("CudaUtils"), quiet);
        assertTrue(quiet.contains("result: loads cleanly"), quiet);
        String verbose = run("verbose.log", "--verbose", "checkpoint", "inspect", model);
        assertFalse(verbose.contains("SLF4J"), verbose);
        assertTrue(verbose.contains("[INFO] PtEngine - Number of intra-op threads is"), verbose);
    }

    private String run(String log, String... args) throws Exception {
        Path f = tmp.resolve(log);
        Process p = Cli.start(f, args);
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), "finished");
        assertEquals(0, p.exitValue(), Files.readString(f));
        return Files.readString(f);
    }
}
