package dev.finetune.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * libtorch's huge pages ({@link HugePages}, {@code THP_MEM_ALLOC_ENABLE=1}) change no value: the same three training
 * steps in two fresh processes, one with the variable at 1 and one without it, end with bit-identical parameters; where
 * the kernel offers transparent huge pages ({@code [always]} or {@code [madvise]}) the first process has tensors in
 * them, and in {@code [madvise]} mode the second has none.
 */
class HugePagesTest {
    private static String probe(String thp) throws Exception {
        // The probe runs with the test JVMs' own flags (the root pom's djl.test.argLine): a run of seconds.
        List<String> cmd = List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Dai.djl.offline=true", "-Dai.djl.pytorch.num_threads=1", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC",
                "-cp", System.getProperty("java.class.path"), HugePagesProbe.class.getName());
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
        pb.environment().remove(HugePages.VARIABLE);
        if (thp != null) {
            pb.environment().put(HugePages.VARIABLE, thp);
        }
        Process p = pb.start();
        String out = new String(p.getInputStream().readAllBytes());
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), out);
        assertEquals(0, p.exitValue(), out);
        return out;
    }

    private static String line(String out, String prefix) {
        return out.lines().filter(l -> l.startsWith(prefix)).findFirst()
                .orElseThrow(() -> new AssertionError("no '" + prefix + "' in: " + out)).substring(prefix.length());
    }

    @Test
    void hugePagesComputeTheSame() throws Exception {
        String asked = probe("1");
        String off = probe(null);
        assertEquals(line(off, "parameters "), line(asked, "parameters "), "huge pages changed a value");
        assertTrue(line(asked, "huge pages: ").startsWith("THP_MEM_ALLOC_ENABLE=1;"), asked);
        assertTrue(line(off, "huge pages: ").startsWith("THP_MEM_ALLOC_ENABLE unset (off);"), off);
        Path mode = Path.of("/sys/kernel/mm/transparent_hugepage/enabled");
        String kernel = Files.isReadable(mode) ? Files.readString(mode) : "[never]";
        if (!kernel.contains("[never]")) {
            assertTrue(Long.parseLong(line(asked, "anon huge bytes ")) > 0, "no tensor in huge pages: " + asked);
        }
        if (kernel.contains("[madvise]")) {
            // Only what is advised gets huge pages in this mode ([always] would give them to any large mapping).
            assertEquals(0, Long.parseLong(line(off, "anon huge bytes ")), off);
        }
    }
}
