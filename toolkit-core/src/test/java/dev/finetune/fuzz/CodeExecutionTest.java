package dev.finetune.fuzz;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.finetune.ErrorKind;
import dev.finetune.checkpoint.CheckpointException;
import dev.finetune.checkpoint.Checkpoints;
import dev.finetune.checkpoint.PthReader;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The trust boundary: a checkpoint that runs code when PyTorch loads it must be refused, name what it tried to call,
 * and run nothing.
 *
 * <p>Real attacks come from scripts/fuzz/make_malicious_pth.py (torch 1.13's torch.save; each file creates MARKER
 * when {@code torch.load} opens it): os.system, builtins.exec, a getattr/__import__ chain that never spells a
 * dangerous name, subprocess.Popen, two gadgets inside torch itself, payloads hidden where the reader would ignore
 * them, protocol 4's STACK_GLOBAL, and a legacy pickle. A second set is written by hand here, so the boundary is
 * tested even where Python is missing: dangerous globals through every opcode that can name one, and dotted or
 * padded spellings of allowed names that Python's own find_class would resolve to something else.
 *
 * <p>The checkpoint package's tests check the os.system and exec fixtures; this suite extends them with the other
 * payloads, every reader entry point, and the absence of any child process.
 */
class CodeExecutionTest {
    @TempDir
    static Path dir;

    private static Path marker;
    private static JsonNode expected;

    @BeforeAll
    static void craftWithRealTorch() throws IOException, InterruptedException {
        marker = dir.resolve("MARKER");
        Path script = script("make_malicious_pth.py");
        Path python = Path.of("/usr/bin/python3");
        if (!Files.isExecutable(python)) {
            return;
        }
        Path log = dir.resolve("python.log");
        Process p = new ProcessBuilder(python.toString(), script.toString(), dir.resolve("torch").toString(),
                marker.toString()).redirectErrorStream(true).redirectOutput(log.toFile()).start();
        if (!p.waitFor(120, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            fail(script + " did not finish in 120 s");
        }
        String output = Files.readString(log);
        if (p.exitValue() != 0 && output.contains("No module named 'torch'")) {
            return; // the Python-crafted tests are skipped; the hand-crafted ones still run
        }
        assertEquals(0, p.exitValue(), script + " failed:\n" + output);
        expected = new ObjectMapper().readTree(dir.resolve("torch/expected.json").toFile());
        assertFalse(Files.exists(marker), "writing the files must not run them");
    }

    @Test
    void torchSavedPayloadsAreRefusedNamingTheGlobalAndNothingRuns() {
        Assumptions.assumeTrue(expected != null, "/usr/bin/python3 with torch is needed to craft these files");
        long childrenBefore = ProcessHandle.current().descendants().count();
        List<String> checked = new ArrayList<>();
        Iterator<Map.Entry<String, JsonNode>> files = expected.fields();
        while (files.hasNext()) {
            Map.Entry<String, JsonNode> e = files.next();
            Path file = dir.resolve("torch").resolve(e.getKey());
            String problem = e.getValue().isNull() ? "looks like a legacy torch.save pickle"
                    : "refusing to load: the pickle references " + e.getValue().asText() + " (data.pkl byte ";
            for (Map.Entry<String, Function<Path, ?>> reader : READERS.entrySet()) {
                CheckpointException x = assertThrows(CheckpointException.class,
                        () -> reader.getValue().apply(file), e.getKey() + " via " + reader.getKey());
                assertEquals(ErrorKind.CHECKPOINT, x.kind());
                assertTrue(x.getMessage().startsWith(file + ": "), x.getMessage());
                assertTrue(x.getMessage().contains(problem), e.getKey() + " via " + reader.getKey() + ": "
                        + x.getMessage());
                if (!e.getValue().isNull()) {
                    assertTrue(x.getMessage().contains("nothing was executed"), x.getMessage());
                }
            }
            checked.add(e.getKey());
        }
        assertEquals(11, checked.size(), "every crafted file: " + checked);
        assertFalse(Files.exists(marker), "a payload ran: " + marker + " exists");
        assertEquals(childrenBefore, ProcessHandle.current().descendants().count(), "reading started a process");
    }

    @Test
    void dangerousGlobalsAreRefusedThroughEveryOpcodeThatNamesOne() throws IOException {
        String[][] globals = {
            {"posix", "system"}, {"os", "system"}, {"nt", "system"}, {"os", "popen"}, {"os", "execv"},
            {"builtins", "exec"}, {"builtins", "eval"}, {"builtins", "compile"}, {"builtins", "getattr"},
            {"builtins", "__import__"}, {"builtins", "open"}, {"__builtin__", "eval"}, {"subprocess", "Popen"},
            {"subprocess", "check_output"}, {"pickle", "loads"}, {"_pickle", "loads"}, {"marshal", "loads"},
            {"runpy", "_run_code"}, {"importlib", "import_module"}, {"functools", "partial"},
            {"operator", "attrgetter"}, {"copyreg", "_reconstructor"}, {"shutil", "rmtree"},
            {"webbrowser", "open"}, {"torch", "load"}, {"torch.serialization", "load"},
            {"torch.storage", "_load_from_bytes"}, {"torch._tensor", "_rebuild_from_type_v2"},
            {"torch.jit", "load"}, {"torch.nn.modules.conv", "Conv2d"}, {"numpy.core.multiarray", "_reconstruct"},
            // Dotted and padded spellings of allowed names: Python's find_class resolves dots as attribute
            // lookups (protocol 4), so these would reach function internals.
            {"collections", "OrderedDict.__init__.__globals__"}, {"torch._utils", "_rebuild_tensor_v2.__globals__"},
            {"torch", "FloatStorage.__new__"}, {"torch._utils ", "_rebuild_tensor_v2"},
            {"collections", "OrderedDict "}, {"__main__", "OrderedDict"}, {"torch", "Tensor"},
        };
        long childrenBefore = ProcessHandle.current().descendants().count();
        int files = 0;
        for (String[] g : globals) {
            String qualified = g[0] + "." + g[1];
            String payload = "touch " + marker;
            Map<String, byte[]> spellings = Map.of(
                    "GLOBAL then REDUCE", new Pickle().proto(2).global(g[0], g[1]).str(payload)
                            .op(Pickle.TUPLE1, Pickle.REDUCE, Pickle.STOP).bytes(),
                    "STACK_GLOBAL then REDUCE", new Pickle().proto(4).stackGlobal(g[0], g[1]).str(payload)
                            .op(Pickle.TUPLE1, Pickle.REDUCE, Pickle.STOP).bytes(),
                    "INST", new Pickle().proto(0).op(Pickle.MARK).str(payload).op('i')
                            .raw((g[0] + "\n" + g[1] + "\n").getBytes(StandardCharsets.UTF_8)).op(Pickle.STOP)
                            .bytes(),
                    "NEWOBJ", new Pickle().proto(2).stackGlobal(g[0], g[1]).op(Pickle.EMPTY_TUPLE, Pickle.NEWOBJ,
                            Pickle.STOP).bytes(),
                    "inside a valid state_dict", stateDictWith(new Pickle().global(g[0], g[1]).str(payload)
                            .op(Pickle.TUPLE1, Pickle.REDUCE)));
            for (Map.Entry<String, byte[]> s : spellings.entrySet()) {
                Path file = dir.resolve("crafted-" + files++ + ".pth");
                Pickle.writePth(file, s.getValue(), Map.of("0", Pickle.floats(2)));
                for (Map.Entry<String, Function<Path, ?>> reader : READERS.entrySet()) {
                    String what = qualified + " by " + s.getKey() + " via " + reader.getKey();
                    CheckpointException x = assertThrows(CheckpointException.class,
                            () -> reader.getValue().apply(file), what);
                    assertTrue(x.getMessage().startsWith(file + ": refusing to load: the pickle references "
                            + qualified + " (data.pkl byte "), what + ": " + x.getMessage());
                    assertTrue(x.getMessage().contains("nothing was executed"), what + ": " + x.getMessage());
                }
            }
        }
        assertFalse(Files.exists(marker), "a payload ran: " + marker + " exists");
        assertEquals(childrenBefore, ProcessHandle.current().descendants().count(), "reading started a process");
    }

    @Test
    void allowedGlobalsCannotBeCalledAsSomethingElse() throws IOException {
        // Allowlisted names are data constructors; using them in any other role is an error, not a call.
        Map<String, byte[]> misuses = Map.of(
                "REDUCE on a storage class", new Pickle().proto(2).global("torch", "FloatStorage").str("x")
                        .op(Pickle.TUPLE1, Pickle.REDUCE, Pickle.STOP).bytes(),
                "REDUCE on a dtype", new Pickle().proto(2).global("torch", "float32").op(Pickle.EMPTY_TUPLE,
                        Pickle.REDUCE, Pickle.STOP).bytes(),
                "NEWOBJ of a rebuild function", new Pickle().proto(2).global("torch._utils", "_rebuild_tensor_v2")
                        .op(Pickle.EMPTY_TUPLE, Pickle.NEWOBJ, Pickle.STOP).bytes(),
                "rebuild_parameter of a string", new Pickle().proto(2).global("torch._utils", "_rebuild_parameter")
                        .str("os.system").op(Pickle.TUPLE1, Pickle.REDUCE, Pickle.STOP).bytes(),
                "OrderedDict of a string", new Pickle().proto(2).global("collections", "OrderedDict")
                        .str("import os").op(Pickle.TUPLE1, Pickle.REDUCE, Pickle.STOP).bytes());
        for (Map.Entry<String, byte[]> m : misuses.entrySet()) {
            Path file = dir.resolve("misuse.pth");
            Pickle.writePth(file, m.getValue(), Map.of());
            CheckpointException x = assertThrows(CheckpointException.class, () -> Checkpoints.read(file), m.getKey());
            assertTrue(x.getMessage().startsWith(file + ": "), x.getMessage());
            assertNotNull(x.getMessage());
        }
    }

    private static final Map<String, Function<Path, ?>> READERS = Corpus.readers(
            "Checkpoints.read(Path)", (Function<Path, ?>) Checkpoints::read,
            "Checkpoints.read(String)", (Function<Path, ?>) f -> Checkpoints.read(f.toString()),
            "PthReader.read", (Function<Path, ?>) f -> new PthReader().read(f));

    /** {@code OrderedDict(w=tensor, payload=<payload>)}. */
    private static byte[] stateDictWith(Pickle payload) {
        return PthFuzzTest.concat(new Pickle().proto(2).orderedDict().op(Pickle.MARK).str("w").floatTensor("0", 2)
                .str("payload").bytes(), payload.bytes(), new byte[] {Pickle.SETITEMS, Pickle.STOP});
    }

    /** A script of scripts/fuzz, found from the working directory (Maven runs tests in the module). */
    static Path script(String name) {
        for (Path d = Path.of("").toAbsolutePath(); d != null; d = d.getParent()) {
            Path candidate = d.resolve("scripts").resolve("fuzz").resolve(name);
            if (Files.isRegularFile(candidate)) {
                return candidate;
            }
        }
        throw new IllegalStateException("scripts/fuzz/" + name + " not found above " + Path.of("").toAbsolutePath());
    }
}
