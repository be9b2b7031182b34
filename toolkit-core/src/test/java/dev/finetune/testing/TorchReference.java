package dev.finetune.testing;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Reference values produced by Debian's torchvision ({@code scripts/reference/torch_reference.py}), generated once per
 * test JVM into {@code target/torch-reference}. CI installs {@code python3-torchvision}; without it these tests fail
 * with a message saying so (they never skip).
 */
public final class TorchReference {
    /** Debian's interpreter: the python3 first on PATH may be another one without torch. */
    public static final String PYTHON = "/usr/bin/python3";

    private static TorchReference instance;

    private final Path dir;
    private final JsonNode index;

    private TorchReference(Path dir) throws IOException {
        this.dir = dir;
        this.index = new ObjectMapper().readTree(dir.resolve("reference.json").toFile()).get("arrays");
    }

    /** The shared reference directory, generated on first use. */
    public static synchronized TorchReference get() throws IOException, InterruptedException {
        if (instance == null) {
            instance = new TorchReference(cached("torch-reference", "reference.json", "torch_reference.py"));
        }
        return instance;
    }

    /**
     * {@code target/<name>}, made once by {@code scripts/reference/<script> [args...] <dir>} and reused by every test
     * and every test JVM of this build: a lock file serialises test JVMs running side by side, and {@code done} (a file
     * the script writes last) tells a finished directory from a half-written one.
     */
    public static Path cached(String name, String done, String script, String... args)
            throws IOException, InterruptedException {
        Path dir = Path.of("target", name).toAbsolutePath();
        Files.createDirectories(dir.getParent());
        try (java.nio.channels.FileChannel ch = java.nio.channels.FileChannel.open(
                        dir.resolveSibling(name + ".lock"), java.nio.file.StandardOpenOption.CREATE,
                        java.nio.file.StandardOpenOption.WRITE);
                java.nio.channels.FileLock lock = ch.lock()) {
            if (!Files.exists(dir.resolve(done))) {
                List<String> cmd = new ArrayList<>();
                cmd.add(repoRoot().resolve("scripts/reference").resolve(script).toString());
                cmd.addAll(List.of(args));
                cmd.add(dir.toString());
                runPython(cmd.toArray(String[]::new));
            }
        }
        return dir;
    }

    /**
     * Runs a Python script with Debian's interpreter ({@link PythonScripts}); returns its output (stdout, then stderr),
     * fails with it when the script fails.
     */
    public static String runPython(String... args) throws IOException, InterruptedException {
        PythonScripts.Run r = PythonScripts.run(List.of(args), 300);
        String out = r.stdout() + r.stderr();
        if (r.exitCode() != 0) {
            throw new AssertionError(
                    "reference script failed (exit " + r.exitCode() + "): " + List.of(args) + "\n" + out
                            + "\n(needs Debian's python3-torchvision: apt-get install -y python3-torchvision;"
                            + " .ci/run installs it)");
        }
        return out;
    }

    /**
     * A reference script shares the two cores with the two test JVMs and often another script, and its OpenMP threads
     * would otherwise spin between parallel regions (libgomp's default), burning the CPU the others wait for: measured
     * over a whole {@code scripts/test.sh}, the scripts' CPU time fell from 133 s to 96 s with passive waits. The wait
     * policy changes how idle threads wait, not how work is split, so every reference value stays the same. Left as
     * the caller set it, if set; {@code scripts/reference/prebuild.py} does the same.
     */
    static void passiveOpenMpWaits(java.util.Map<String, String> env) {
        env.putIfAbsent("OMP_WAIT_POLICY", "PASSIVE");
    }

    /** The repository root (the folder with {@code scripts/}). */
    public static Path repoRoot() {
        Path p = Path.of("").toAbsolutePath();
        while (p != null && !Files.isDirectory(p.resolve("scripts"))) {
            p = p.getParent();
        }
        if (p == null) {
            throw new IllegalStateException("cannot find the repository root from " + Path.of("").toAbsolutePath());
        }
        return p;
    }

    /** The torchvision checkpoint the reference values come from. */
    public Path checkpoint() {
        return dir.resolve("resnet18.pth");
    }

    public long[] shape(String name) {
        JsonNode s = index.get(name);
        long[] out = new long[s.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = s.get(i).asLong();
        }
        return out;
    }

    public float[] array(String name) throws IOException {
        byte[] bytes = Files.readAllBytes(dir.resolve("arrays").resolve(name + ".f32"));
        float[] out = new float[bytes.length / 4];
        ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(out);
        return out;
    }

    /** Largest absolute difference, failing on a length mismatch. */
    public static double maxAbsDiff(float[] a, float[] b) {
        if (a.length != b.length) {
            throw new AssertionError("length " + a.length + " != " + b.length);
        }
        double m = 0;
        for (int i = 0; i < a.length; i++) {
            m = Math.max(m, Math.abs(a[i] - b[i]));
        }
        return m;
    }

    /** A raw little-endian float32 file, as the reference scripts write them. */
    public static float[] readF32(Path f) throws IOException {
        java.nio.ByteBuffer b = java.nio.ByteBuffer.wrap(Files.readAllBytes(f)).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        float[] out = new float[b.remaining() / 4];
        b.asFloatBuffer().get(out);
        return out;
    }

    /** A raw little-endian float64 file. */
    public static double[] readF64(Path f) throws IOException {
        java.nio.ByteBuffer b = java.nio.ByteBuffer.wrap(Files.readAllBytes(f)).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        double[] out = new double[b.remaining() / 8];
        b.asDoubleBuffer().get(out);
        return out;
    }

    /** A raw little-endian int64 file. */
    public static long[] readI64(Path f) throws IOException {
        java.nio.ByteBuffer b = java.nio.ByteBuffer.wrap(Files.readAllBytes(f)).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        long[] out = new long[b.remaining() / 8];
        b.asLongBuffer().get(out);
        return out;
    }
}
