package dev.finetune.testing;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * Runs {@code /usr/bin/python3 SCRIPT ARGS...} for the tests, through this build's fork server when one can be started
 * ({@code scripts/reference/forkserver.py}: torch and torchvision imported once, each script run in a forked child as
 * a fresh interpreter would run it), else as its own process.
 *
 * <p>Why: a test run starts about thirty reference scripts, and importing torch and torchvision is ~1.3 s of CPU of
 * each, on the two cores the two test JVMs share. The server is started by the first test JVM that needs it (under a
 * lock in {@code target/}) with the environment a script would get, and exits after a minute without a request.
 * Anything that goes wrong with it (no socket, a refused connection, no reply) runs the script as its own process, so
 * a script's failure is always reported as that script's, with its output. {@code -Dfinetune.test.pyfork=false} turns
 * the server off.
 */
public final class PythonScripts {
    /** What a script printed and how it ended. */
    public record Run(int exitCode, String stdout, String stderr) {}

    private static final int IDLE_SECONDS = 60;
    private static final ObjectMapper JSON = new ObjectMapper();

    private PythonScripts() {}

    /**
     * Runs {@code scriptAndArgs} (a {@code .py} file and its arguments) with Debian's interpreter in this JVM's working
     * directory and environment, with idle OpenMP threads waiting passively; a script still running after
     * {@code timeoutSeconds} is stopped and reported as such.
     */
    public static Run run(List<String> scriptAndArgs, int timeoutSeconds) throws IOException, InterruptedException {
        if (scriptAndArgs.get(0).endsWith(".py") && !"false".equals(System.getProperty("finetune.test.pyfork"))) {
            Run r = throughServer(scriptAndArgs, timeoutSeconds);
            if (r != null) {
                return r;
            }
        }
        return direct(scriptAndArgs, timeoutSeconds);
    }

    /** {@code /usr/bin/python3 ARGS...} as its own process, whatever the arguments ({@code -c CODE} too). */
    public static Run direct(List<String> scriptAndArgs, int timeoutSeconds) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>();
        cmd.add(TorchReference.PYTHON);
        cmd.addAll(scriptAndArgs);
        Path err = Files.createTempFile("python", ".stderr");
        try {
            ProcessBuilder pb = new ProcessBuilder(cmd).redirectError(err.toFile());
            TorchReference.passiveOpenMpWaits(pb.environment());
            Process p = pb.start();
            p.getOutputStream().close();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            if (!p.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                return new Run(124, out, Files.readString(err) + "\n(stopped after " + timeoutSeconds + " s)");
            }
            return new Run(p.exitValue(), out, Files.readString(err));
        } finally {
            Files.deleteIfExists(err);
        }
    }

    /** The script through the server, or null when the server cannot run it. */
    private static Run throughServer(List<String> scriptAndArgs, int timeoutSeconds) throws IOException {
        Path target = Path.of("target").toAbsolutePath();
        Path out = Files.createTempFile("python", ".stdout");
        Path err = Files.createTempFile("python", ".stderr");
        try (SocketChannel ch = connect(target)) {
            if (ch == null) {
                return null;
            }
            Map<String, String> env = new HashMap<>(System.getenv());
            TorchReference.passiveOpenMpWaits(env);
            List<String> argv = new ArrayList<>(scriptAndArgs);
            argv.set(0, Path.of(argv.get(0)).toAbsolutePath().toString());
            Map<String, Object> request = new LinkedHashMap<>();
            request.put("argv", argv);
            request.put("cwd", Path.of("").toAbsolutePath().toString());
            request.put("env", env);
            request.put("out", out.toString());
            request.put("err", err.toString());
            request.put("timeout", timeoutSeconds);
            ch.write(ByteBuffer.wrap((JSON.writeValueAsString(request) + "\n").getBytes(StandardCharsets.UTF_8)));
            String reply = new String(java.nio.channels.Channels.newInputStream(ch).readAllBytes(), StandardCharsets.UTF_8).trim();
            if (reply.isEmpty()) {
                return null; // the server went away before answering
            }
            int code = Integer.parseInt(reply);
            String stderr = Files.readString(err);
            if (code == 124) {
                stderr += "\n(stopped after " + timeoutSeconds + " s)";
            }
            return new Run(code, Files.readString(out), stderr);
        } catch (IOException | NumberFormatException e) {
            return null;
        } finally {
            Files.deleteIfExists(out);
            Files.deleteIfExists(err);
        }
    }

    /** A connection to this build's server, started if none answers; null if none can be. */
    private static SocketChannel connect(Path target) throws IOException {
        Files.createDirectories(target);
        // In /tmp, named after the build: a Unix socket's path is limited to 107 bytes, and target/ may be deep.
        Path socket = Path.of(System.getProperty("java.io.tmpdir"),
                "finetune-pyfork-" + Integer.toHexString(target.toString().hashCode()) + ".sock");
        SocketChannel ch = tryConnect(socket);
        if (ch != null) {
            return ch;
        }
        try (FileChannel lockFile = FileChannel.open(target.resolve("pyfork.lock"), StandardOpenOption.CREATE,
                        StandardOpenOption.WRITE);
                FileLock lock = lockFile.lock()) {
            lock.getClass();
            ch = tryConnect(socket); // another JVM may have started it while this one waited
            if (ch != null) {
                return ch;
            }
            Path script = TorchReference.repoRoot().resolve("scripts/reference/forkserver.py");
            ProcessBuilder pb = new ProcessBuilder(TorchReference.PYTHON, script.toString(), socket.toString(),
                    Integer.toString(IDLE_SECONDS)).redirectErrorStream(true)
                    .redirectOutput(ProcessBuilder.Redirect.appendTo(target.resolve("pyfork.log").toFile()));
            TorchReference.passiveOpenMpWaits(pb.environment());
            Process server = pb.start();
            long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (System.nanoTime() < end && server.isAlive()) {
                ch = tryConnect(socket);
                if (ch != null) {
                    return ch;
                }
                Thread.sleep(50);
            }
            server.destroy();
            return null;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return null;
        }
    }

    private static SocketChannel tryConnect(Path socket) {
        if (!Files.exists(socket)) {
            return null;
        }
        SocketChannel ch = null;
        try {
            ch = SocketChannel.open(StandardProtocolFamily.UNIX);
            ch.connect(UnixDomainSocketAddress.of(socket));
            return ch;
        } catch (IOException e) {
            if (ch != null) {
                try {
                    ch.close();
                } catch (IOException ignored) {
                    // nothing was sent on it
                }
            }
            return null;
        }
    }
}
