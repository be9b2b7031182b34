package dev.finetune.checkpoint;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.finetune.ErrorKind;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** {@link PthReader} on files written by the real torch.save (scripts/checkpoint/make_fixtures.py). */
class PthReaderTest {
    @TempDir
    static Path fixtures;

    static JsonNode expected;

    @BeforeAll
    static void makeFixtures() throws IOException {
        TorchPython.assumeTorch();
        expected = TorchPython.makeFixtures(fixtures);
    }

    @Test
    void readsEveryDtypeStridedAndSharedTensorsExactly() {
        Checkpoint checkpoint = new PthReader().read(fixtures.resolve("state_dict.pth"));

        assertEquals(CheckpointFormat.PYTORCH_PTH, checkpoint.format());
        assertEquals(names(expected.get("state_dict")), new ArrayList<>(checkpoint.tensors().keySet()));
        assertMatches(expected.get("state_dict"), checkpoint);
        assertEquals("state_dict", checkpoint.metadata().get("archive"));
    }

    @Test
    void viewSharingAStorageSeesTheRightElements() {
        Map<String, HostTensor> tensors = new PthReader().read(fixtures.resolve("state_dict.pth")).tensors();
        float[] base = tensors.get("base").data(); // 3 x 4
        float[] view = tensors.get("view").data(); // base[1:, 1:3]
        assertArrayEquals(new float[] {base[5], base[6], base[9], base[10]}, view);
        float[] transposed = tensors.get("transposed").data();
        assertArrayEquals(new long[] {4, 3}, tensors.get("transposed").shape());
        assertEquals(12, transposed.length);
    }

    @Test
    void unwrapsStateDictAndListsIgnoredKeys() {
        Checkpoint checkpoint = new PthReader().read(fixtures.resolve("wrapped.pth"));

        assertMatches(expected.get("wrapped"), checkpoint);
        assertEquals("state_dict", checkpoint.metadata().get("wrapped_key"));
        assertEquals("epoch, best_acc", checkpoint.metadata().get("ignored_keys"));
        assertEquals("3", checkpoint.metadata().get("ignored.epoch"));
        assertEquals("0.75", checkpoint.metadata().get("ignored.best_acc"));
    }

    @Test
    void unwrapsModelKeyNextToOptimizerState() {
        Checkpoint checkpoint = new PthReader().read(fixtures.resolve("wrapped_model.pth"));

        assertMatches(expected.get("wrapped_model"), checkpoint);
        assertEquals("model", checkpoint.metadata().get("wrapped_key"));
        assertEquals("optimizer, epoch", checkpoint.metadata().get("ignored_keys"));
    }

    @ParameterizedTest
    @ValueSource(strings = {"malicious_os_system.pth", "malicious_exec.pth"})
    void refusesPicklesThatCallCodeAndRunsNothing(String name) {
        Path file = fixtures.resolve(name);
        String global = expected.get("malicious").get(name).asText(); // posix.system, __builtin__.exec

        for (Runnable read : List.<Runnable>of(() -> new PthReader().read(file), () -> Checkpoints.read(file))) {
            CheckpointException e = assertThrows(CheckpointException.class, read::run);
            assertEquals(ErrorKind.CHECKPOINT, e.kind());
            assertTrue(e.getMessage().startsWith(file.toString()), e.getMessage());
            assertTrue(e.getMessage().contains(global), e.getMessage());
            assertTrue(e.getMessage().contains("tries to call code outside a state_dict"), e.getMessage());
            assertTrue(e.getMessage().contains("nothing was executed"), e.getMessage());
            assertTrue(e.getMessage().contains("torch.save(model.state_dict(), f)"), e.getMessage());
        }
        assertFalse(Files.exists(Path.of(expected.get("marker").asText())), "the payload must never run");
    }

    @Test
    void refusesLegacyPickleWithConversionHint() {
        Path file = fixtures.resolve("legacy.pth");

        for (Runnable read : List.<Runnable>of(() -> new PthReader().read(file), () -> Checkpoints.read(file))) {
            CheckpointException e = assertThrows(CheckpointException.class, read::run);
            assertTrue(e.getMessage().startsWith(file + ": looks like a legacy torch.save pickle"), e.getMessage());
            assertTrue(e.getMessage().contains("not supported"), e.getMessage());
            assertTrue(e.getMessage().contains("torch.save("), e.getMessage());
            assertTrue(e.getMessage().contains("safetensors"), e.getMessage());
        }
    }

    @Test
    void refusesTorchScriptWithConversionHint() {
        Path file = fixtures.resolve("torchscript.pt");

        for (Runnable read : List.<Runnable>of(() -> new PthReader().read(file), () -> Checkpoints.read(file))) {
            CheckpointException e = assertThrows(CheckpointException.class, read::run);
            assertTrue(e.getMessage().startsWith(file + ": is a TorchScript archive"), e.getMessage());
            assertTrue(e.getMessage().contains("state_dict()"), e.getMessage());
        }
    }

    @Test
    void readsTorchvisionResnet18WithEveryNameShapeAndValue() {
        Checkpoint checkpoint = Checkpoints.read(fixtures.resolve("resnet18.pth"));
        JsonNode want = expected.get("resnet18");

        assertEquals(122, checkpoint.tensors().size());
        assertEquals(names(want), new ArrayList<>(checkpoint.tensors().keySet()));
        for (Map.Entry<String, HostTensor> e : checkpoint.tensors().entrySet()) {
            JsonNode w = want.get(e.getKey());
            assertEquals(w.get("dtype").asText(), e.getValue().sourceDtype(), e.getKey());
            assertArrayEquals(TorchPython.shape(w), e.getValue().shape(), e.getKey());
            assertEquals(w.get("sha256").asText(), TestFiles.fp32Sha256(e.getValue().data()), e.getKey());
        }
        assertEquals(Map.of("F32", 102L, "I64", 20L), checkpoint.dtypeCounts());
        assertEquals("102 F32, 20 I64", checkpoint.dtypeSummary());
        assertEquals(11_699_132L, checkpoint.parameterCount());
    }

    @Test
    void truncatedTorchFileIsReportedAsTruncated() throws IOException {
        byte[] whole = Files.readAllBytes(fixtures.resolve("state_dict.pth"));
        Path file = fixtures.resolve("truncated.pth");
        Files.write(file, Arrays.copyOf(whole, whole.length / 2));

        CheckpointException e = assertThrows(CheckpointException.class, () -> new PthReader().read(file));
        assertTrue(e.getMessage().startsWith(file + ": truncated or corrupt zip archive"), e.getMessage());
        e = assertThrows(CheckpointException.class, () -> Checkpoints.read(file));
        assertTrue(e.getMessage().startsWith(file + ": truncated or corrupt zip archive"), e.getMessage());
    }

    static void assertMatches(JsonNode want, Checkpoint checkpoint) {
        assertEquals(names(want), new ArrayList<>(checkpoint.tensors().keySet()));
        for (Map.Entry<String, HostTensor> e : checkpoint.tensors().entrySet()) {
            JsonNode w = want.get(e.getKey());
            assertEquals(w.get("dtype").asText(), e.getValue().sourceDtype(), e.getKey());
            assertArrayEquals(TorchPython.shape(w), e.getValue().shape(), e.getKey());
            // assertArrayEquals on floats compares bit patterns, so -0.0, infinities and NaN must match exactly.
            assertArrayEquals(TorchPython.values(w), e.getValue().data(), e.getKey());
        }
    }

    static List<String> names(JsonNode object) {
        List<String> names = new ArrayList<>();
        for (Iterator<String> it = object.fieldNames(); it.hasNext(); ) {
            names.add(it.next());
        }
        return names;
    }
}
