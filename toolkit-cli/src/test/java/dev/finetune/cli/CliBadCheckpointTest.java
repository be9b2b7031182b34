package dev.finetune.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.finetune.checkpoint.HostTensor;
import dev.finetune.checkpoint.PthWriter;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Bad checkpoints through the real command: each ends with exit 5 and one line naming the file and the problem —
 * no stack trace, no out-of-memory, and for a pickle that tries to run code, nothing runs.
 */
class CliBadCheckpointTest {
    @TempDir
    static Path tmp;

    static Path fixtures;

    @BeforeAll
    static void makeFixtures() throws Exception {
        fixtures = tmp.resolve("fixtures");
        Cli.python(Cli.repo().resolve("scripts/checkpoint/make_fixtures.py").toString(), fixtures.toString());
    }

    private static String inspectFails(Path file, String problem) {
        Cli.Result r = Cli.run("checkpoint", "inspect", file.toString());
        assertEquals(5, r.code(), r.out() + r.err());
        assertTrue(r.err().startsWith("error: " + file + ": "), r.err());
        assertTrue(r.err().contains(problem), "expected '" + problem + "' in: " + r.err());
        assertFalse(r.err().contains("\tat "), "no stack trace: " + r.err());
        assertEquals(1, r.err().strip().lines().count(), "one line: " + r.err());
        return r.err();
    }

    @Test
    void truncatedPth() throws Exception {
        Path good = tmp.resolve("good.pth");
        Map<String, HostTensor> sd = new LinkedHashMap<>();
        sd.put("fc.weight", HostTensor.of(new long[] {4, 8}, new float[32]));
        PthWriter.write(good, sd);
        byte[] all = Files.readAllBytes(good);
        Path cut = tmp.resolve("truncated.pth");
        Files.write(cut, Arrays.copyOf(all, all.length / 2));
        inspectFails(cut, "");
    }

    @Test
    void notAZip() throws Exception {
        Path f = tmp.resolve("notzip.pth");
        Files.writeString(f, "hello, I am not a checkpoint");
        inspectFails(f, "unknown checkpoint format");
    }

    @Test
    void zipWithoutDataPkl() throws Exception {
        Path f = tmp.resolve("nodata.pth");
        try (ZipOutputStream z = new ZipOutputStream(Files.newOutputStream(f))) {
            z.putNextEntry(new ZipEntry("archive/version"));
            z.write("3\n".getBytes(StandardCharsets.UTF_8));
            z.closeEntry();
        }
        inspectFails(f, "");
    }

    @Test
    void pickleThatCallsOsSystemIsRefusedAndNothingRuns() {
        String err = inspectFails(fixtures.resolve("malicious_os_system.pth"), "system");
        assertTrue(err.contains("posix.system") || err.contains("os.system"), err);
        assertFalse(Files.exists(fixtures.resolve("MARKER")), "the payload ran");
        String err2 = inspectFails(fixtures.resolve("malicious_exec.pth"), "exec");
        assertFalse(Files.exists(fixtures.resolve("MARKER")), "the payload ran: " + err2);
    }

    @Test
    void safetensorsHeaderLengthPastTheFile() throws Exception {
        Path f = tmp.resolve("header.safetensors");
        ByteBuffer b = ByteBuffer.allocate(8 + 20).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(1_000_000).put("{\"a\":1}".getBytes(StandardCharsets.UTF_8));
        Files.write(f, b.array());
        inspectFails(f, "");
    }

    @Test
    void safetensorsOverlappingOffsets() throws Exception {
        Path f = safetensors("overlap.safetensors",
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                        + "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12);
        inspectFails(f, "overlap");
    }

    @Test
    void safetensors100GbClaimDoesNotAllocate() throws Exception {
        Path f = safetensors("huge.safetensors",
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[25000000000],\"data_offsets\":[0,100000000000]}}", 16);
        inspectFails(f, "");
    }

    @Test
    void shapeMismatchAgainstTheArchitecture() throws Exception {
        Path f = Cli.repo().resolve("models/resnet18-fmnist-a.safetensors");
        Cli.Result r = Cli.run("checkpoint", "inspect", f.toString(), "--arch", "resnet50");
        assertEquals(5, r.code());
        assertTrue(r.out().contains("shape mismatch"), r.out());
        assertTrue(r.out().contains("does NOT load strictly"), r.out());
    }

    private static Path safetensors(String name, String header, int dataBytes) throws Exception {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(8 + h.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(h.length).put(h);
        Path f = tmp.resolve(name);
        Files.write(f, b.array());
        return f;
    }
}
