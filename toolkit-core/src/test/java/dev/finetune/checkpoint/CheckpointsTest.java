package dev.finetune.checkpoint;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.finetune.ErrorKind;
import dev.finetune.FinetuneException;
import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Format detection by content and the {@code path | torchvision:model} source syntax. */
class CheckpointsTest {
    @TempDir
    Path dir;

    @Test
    void detectsFormatsByContentNotName() {
        Path pth = dir.resolve("weights.safetensors"); // misleading names on purpose
        Path safetensors = dir.resolve("weights.pth");
        PthWriter.write(pth, SafetensorsTest.sample());
        SafetensorsWriter.write(safetensors, SafetensorsTest.sample(), Map.of(), "F32");

        assertEquals(CheckpointFormat.PYTORCH_PTH, Checkpoints.detect(pth));
        assertEquals(CheckpointFormat.SAFETENSORS, Checkpoints.detect(safetensors));
        assertEquals(5, Checkpoints.read(pth.toString()).tensors().size());
        assertEquals(5, Checkpoints.read(safetensors.toString()).tensors().size());
    }

    @Test
    void unknownFormatNamesTheFileAndTheSupportedFormats() throws IOException {
        Path file = dir.resolve("model.onnx");
        Files.write(file, new byte[] {0x08, 0x07, 0x12, 0x04, 'o', 'n', 'n', 'x', 0x00, 0x01});

        CheckpointException e = assertThrows(CheckpointException.class, () -> Checkpoints.read(file));
        assertEquals(file + ": unknown checkpoint format; supported formats: PyTorch .pth zip (torch.save since "
                + "PyTorch 1.6), safetensors, finetune checkpoint", e.getMessage());
    }

    @Test
    void legacyPickleHeaderIsRecognisedWithoutTorch() throws IOException {
        // What torch.save(..., _use_new_zipfile_serialization=False) starts with: PROTO 2, LONG1 magic number.
        Path file = dir.resolve("old.pth");
        Files.write(file, new byte[] {(byte) 0x80, 2, (byte) 0x8a, 0x0a, 0x6c, (byte) 0xfc, (byte) 0x9c, 0x46,
            (byte) 0xf9, 0x20, 0x6a, (byte) 0xa8, 0x50, 0x19, 0x2e});

        CheckpointException e = assertThrows(CheckpointException.class, () -> Checkpoints.read(file));
        assertTrue(e.getMessage().startsWith(file + ": looks like a legacy torch.save pickle"), e.getMessage());
    }

    @Test
    void unknownTorchvisionModel() {
        TorchvisionWeights offline = new TorchvisionWeights(URI.create("http://127.0.0.1:9/"), dir, true);

        FinetuneException e = assertThrows(FinetuneException.class,
                () -> Checkpoints.read("torchvision:resnet99", offline));
        assertEquals(ErrorKind.CHECKPOINT, e.kind());
        assertTrue(e.getMessage().startsWith("torchvision:resnet99: unknown torchvision weights; write torchvision:ARCH"
                + " for one of ["), e.getMessage());
        assertTrue(e.getMessage().contains(" resnet18, "), e.getMessage());
        assertTrue(e.getMessage().contains(", or torchvision:ARCH:WEIGHTS for ["), e.getMessage());
        assertTrue(e.getMessage().contains("resnet50:IMAGENET1K_V2"), e.getMessage());
    }

    @Test
    void torchvisionSourceGoesThroughTheCache() {
        TorchvisionWeights offline = new TorchvisionWeights(URI.create("http://127.0.0.1:9/"), dir, true);

        FinetuneException e = assertThrows(FinetuneException.class,
                () -> Checkpoints.read("torchvision:resnet18", offline));
        assertEquals(ErrorKind.DOWNLOAD, e.kind());
        assertTrue(e.getMessage().contains("place it at " + dir.resolve("resnet18-f37072fd.pth")), e.getMessage());
    }

    @Test
    void headClassesAreCheckedNotTruncated() {
        assertEquals(7, head(7, 2).headClasses("fc").getAsInt());
        assertEquals(3, new Checkpoint(Path.of("m.pth"), CheckpointFormat.PYTORCH_PTH, new java.util.LinkedHashMap<>(Map.of(
                "module.fc.weight", HostTensor.of(new long[] {3, 1}, new float[3]))), Map.of()).headClasses("fc")
                .getAsInt(), "after a wrapper prefix");
        for (long rows : new long[] {0, (1L << 32) + 1, 1L << 31, -1}) {
            FinetuneException e = assertThrows(FinetuneException.class, () -> head(rows, 0).headClasses("fc"));
            assertEquals(ErrorKind.CHECKPOINT, e.kind());
            assertTrue(e.getMessage().contains("fc.weight has " + rows + " rows"), e.getMessage());
        }
        assertTrue(new Checkpoint(Path.of("x.pth"), CheckpointFormat.PYTORCH_PTH, new java.util.LinkedHashMap<>(),
                Map.of()).headClasses("fc").isEmpty());
    }

    private static Checkpoint head(long rows, int cols) {
        var tensors = new java.util.LinkedHashMap<String, HostTensor>();
        tensors.put("fc.weight", HostTensor.of(new long[] {rows, cols}, new float[(int) Math.max(0, rows * cols)]));
        return new Checkpoint(Path.of("x.pth"), CheckpointFormat.PYTORCH_PTH, tensors, Map.of());
    }
}
