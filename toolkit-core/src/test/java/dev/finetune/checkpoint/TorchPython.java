package dev.finetune.checkpoint;

import static org.junit.jupiter.api.Assertions.fail;

import com.fasterxml.jackson.core.json.JsonReadFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.json.JsonMapper;
import dev.finetune.testing.PythonScripts;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Assumptions;

/**
 * Runs Debian's Python with real PyTorch for tests that compare with torch itself. It must be /usr/bin/python3: the
 * python3 first on PATH may be another interpreter without torch.
 */
final class TorchPython {
    static final Path PYTHON = Path.of("/usr/bin/python3");
    /** Python's json writes -Infinity and NaN for such floats. */
    static final JsonMapper JSON = JsonMapper.builder().enable(JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS).build();

    private static Boolean torchAvailable;
    private static String whyUnavailable;

    private TorchPython() {
    }

    /** Skips the calling test, with the reason, only if /usr/bin/python3 cannot import torch and torchvision. */
    static synchronized void assumeTorch() {
        if (torchAvailable == null) {
            try {
                PythonScripts.Run r = PythonScripts.direct(List.of("-c", "import torch, torchvision"), 120);
                torchAvailable = r.exitCode() == 0;
                whyUnavailable = r.stderr();
            } catch (IOException e) {
                torchAvailable = false;
                whyUnavailable = e.toString();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                torchAvailable = false;
                whyUnavailable = e.toString();
            }
        }
        Assumptions.assumeTrue(torchAvailable, () -> PYTHON + " cannot import torch and torchvision, so the tests "
                + "that compare with real PyTorch are skipped. Install them with "
                + "'apt-get install python3-torch python3-torchvision' (CI does). Python said: " + whyUnavailable);
    }

    /** Runs scripts/checkpoint/make_fixtures.py into {@code dir} and returns its expected.json. */
    static JsonNode makeFixtures(Path dir) throws IOException {
        run(List.of(script("make_fixtures.py").toString(), dir.toString()));
        return JSON.readTree(dir.resolve("expected.json").toFile());
    }

    /** Runs a script of scripts/checkpoint with the given arguments; returns stdout, fails the test on error. */
    static String run(List<String> scriptAndArgs) throws IOException {
        PythonScripts.Run r;
        try {
            r = PythonScripts.run(scriptAndArgs, 300);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted", e);
        }
        if (r.exitCode() != 0) {
            fail(PYTHON + " " + String.join(" ", scriptAndArgs) + " exited with " + r.exitCode() + ":\n"
                    + r.stderr());
        }
        return r.stdout();
    }

    /** A script in the repository's scripts/checkpoint, found from the working directory (Maven runs in the module). */
    static Path script(String name) {
        for (Path dir = Path.of("").toAbsolutePath(); dir != null; dir = dir.getParent()) {
            Path candidate = dir.resolve("scripts").resolve("checkpoint").resolve(name);
            if (Files.isRegularFile(candidate)) {
                return candidate;
            }
        }
        throw new IllegalStateException("scripts/checkpoint/" + name + " not found above " + Path.of("").toAbsolutePath());
    }

    /** The fp32 values of a {describe(t)} JSON object. */
    static float[] values(JsonNode tensor) {
        JsonNode v = tensor.get("values");
        float[] out = new float[v.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = (float) v.get(i).doubleValue();
        }
        return out;
    }

    static long[] shape(JsonNode tensor) {
        JsonNode s = tensor.get("shape");
        long[] out = new long[s.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = s.get(i).longValue();
        }
        return out;
    }
}
