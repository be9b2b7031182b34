package dev.finetune.checkpoint;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@link PthWriter} output loaded by real PyTorch: torch.load(weights_only=True) and resnet18.load_state_dict. */
class PthWriterTest {
    @TempDir
    static Path fixtures;

    static JsonNode expected;

    @TempDir
    Path dir;

    @BeforeAll
    static void makeFixtures() throws IOException {
        TorchPython.assumeTorch();
        expected = TorchPython.makeFixtures(fixtures);
    }

    static LinkedHashMap<String, HostTensor> tensors() {
        LinkedHashMap<String, HostTensor> t = new LinkedHashMap<>();
        t.put("conv.weight", HostTensor.of(new long[] {2, 1, 2, 2},
                new float[] {0.1f, -0.2f, 1e-30f, -0f, Float.MAX_VALUE, 3f, Float.MIN_VALUE, 7.5f}));
        t.put("odd", HostTensor.of(new long[] {2}, new float[] {Float.NEGATIVE_INFINITY, Float.NaN}));
        t.put("bn.num_batches_tracked", new HostTensor("I64", new long[0], new float[] {3000000000f}));
        t.put("half.source", new HostTensor("F16", new long[] {3}, new float[] {0.5f, -1.5f, 65504f}));
        t.put("five.dims", HostTensor.of(new long[] {1, 2, 1, 1, 2}, new float[] {1, 2, 3, 4}));
        t.put("long.dim", HostTensor.of(new long[] {70000}, new float[70000]));
        t.put("empty", HostTensor.of(new long[] {3, 0}, new float[0]));
        t.put("mask", new HostTensor("BOOL", new long[] {2}, new float[] {1, 0}));
        t.put("codes", new HostTensor("I32", new long[] {2}, new float[] {-5, 1 << 20}));
        t.put("unicode.näme", HostTensor.of(new long[] {1}, new float[] {42}));
        return t;
    }

    @Test
    void torchLoadsWhatJavaWrote() throws IOException {
        Path file = dir.resolve("java-written.pth");
        PthWriter.write(file, tensors());

        JsonNode torch = TorchPython.JSON.readTree(
                TorchPython.run(List.of(TorchPython.script("load_with_torch.py").toString(), file.toString())));

        assertEquals(new ArrayList<>(tensors().keySet()), PthReaderTest.names(torch));
        for (Map.Entry<String, HostTensor> e : tensors().entrySet()) {
            JsonNode t = torch.get(e.getKey());
            String dtype = e.getValue().sourceDtype();
            String written = dtype.equals("F16") ? "F32" : dtype; // floats are written as fp32
            assertEquals(written, t.get("dtype").asText(), e.getKey());
            assertArrayEquals(e.getValue().shape(), TorchPython.shape(t), e.getKey());
            assertArrayEquals(e.getValue().data(), TorchPython.values(t), e.getKey());
        }
    }

    @Test
    void javaReadsBackWhatItWrote() {
        Path file = dir.resolve("back.pth");
        PthWriter.write(file, tensors());

        Checkpoint read = new PthReader().read(file);
        assertEquals("back", read.metadata().get("archive"));
        for (Map.Entry<String, HostTensor> e : tensors().entrySet()) {
            assertArrayEquals(e.getValue().data(), read.tensors().get(e.getKey()).data(), e.getKey());
            assertArrayEquals(e.getValue().shape(), read.tensors().get(e.getKey()).shape(), e.getKey());
        }
    }

    @Test
    void torchvisionResnet18LoadsTheRewrittenStateDictStrictly() throws IOException {
        Checkpoint original = new PthReader().read(fixtures.resolve("resnet18.pth"));
        Path file = dir.resolve("resnet18-from-java.pth");
        PthWriter.write(file, original.tensors());

        JsonNode loaded = TorchPython.JSON.readTree(TorchPython.run(
                List.of(TorchPython.script("load_with_torch.py").toString(), file.toString(), "--resnet18")));

        JsonNode want = expected.get("resnet18");
        assertEquals(PthReaderTest.names(want), PthReaderTest.names(loaded));
        for (String name : PthReaderTest.names(want)) {
            assertEquals(want.get(name), loaded.get(name), name); // dtype, shape and sha256 of the values
        }
    }

    @Test
    void outputIsDeterministicAndDataIsAligned() throws IOException {
        Path a = dir.resolve("a.pth");
        Path b = dir.resolve("sub-a.pth");
        PthWriter.write(a, tensors());
        Files.createDirectories(dir.resolve("other"));
        PthWriter.write(dir.resolve("other").resolve("a.pth"), tensors());
        assertArrayEquals(Files.readAllBytes(a), Files.readAllBytes(dir.resolve("other").resolve("a.pth")));

        // Walk the local file headers: every entry's data starts on a 64-byte boundary, as in torch's own files.
        ByteBuffer zip = ByteBuffer.wrap(Files.readAllBytes(a)).order(ByteOrder.LITTLE_ENDIAN);
        int at = 0;
        int entries = 0;
        while (zip.getInt(at) == 0x04034b50) {
            int size = zip.getInt(at + 18);
            int nameLength = zip.getShort(at + 26) & 0xFFFF;
            int extraLength = zip.getShort(at + 28) & 0xFFFF;
            String name = new String(zip.array(), at + 30, nameLength, StandardCharsets.UTF_8);
            int data = at + 30 + nameLength + extraLength;
            assertEquals(0, data % 64, name + " data at " + data);
            assertTrue(name.startsWith("a/"), name);
            at = data + size;
            entries++;
        }
        assertEquals(tensors().size() + 3, entries); // data.pkl, byteorder, data/0..n-1, version
        assertEquals("sub-a", PthWriter.archiveName(b));
        assertEquals("my_model_v2", PthWriter.archiveName(Path.of("my model v2.pth")));
    }
}
