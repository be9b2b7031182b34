package dev.finetune.checkpoint;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.finetune.io.AtomicFiles;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;

/**
 * Writes safetensors files that the reference implementation ({@code safetensors.torch.load_file}) reads: tensors in
 * the map's order, data contiguous and little-endian, the JSON header padded with spaces to a multiple of 8 bytes so
 * the data section starts aligned, and the file replaced atomically.
 */
public final class SafetensorsWriter {
    private static final ObjectMapper JSON = new ObjectMapper();

    private SafetensorsWriter() {
    }

    /**
     * Writes {@code tensors} to {@code out}.
     *
     * <p>{@code dtype} ({@code "F32"} or {@code "F16"}) is the storage type of floating-point tensors. Tensors whose
     * {@link HostTensor#sourceDtype()} is an integer or BOOL type keep that type, because consumers such as
     * torchvision's {@code load_state_dict} expect {@code num_batches_tracked} as int64 (their values are whole
     * numbers, so the fp32 round trip lost nothing).
     *
     * @param metadata written as {@code __metadata__} (omitted when empty); use
     *     {@link Checkpoints#FORMAT_KEY}={@link Checkpoints#FINETUNE_FORMAT} to mark a toolkit checkpoint
     * @throws IllegalArgumentException for a dtype other than F32/F16 or a tensor named {@code __metadata__}
     * @throws dev.finetune.FinetuneException {@link dev.finetune.ErrorKind#OUTPUT} if the file cannot be written
     */
    public static void write(Path out, Map<String, HostTensor> tensors, Map<String, String> metadata, String dtype) {
        writeEntries(out, TensorEntry.of(tensors), metadata, dtype);
    }

    /**
     * {@link #write} for entries whose values are read as the writer reaches each one ({@link TensorEntry}): the
     * header from types and shapes, then one tensor's values on the heap at a time.
     */
    public static void writeEntries(Path out, Map<String, TensorEntry> tensors, Map<String, String> metadata,
            String dtype) {
        Dtype floatType = Dtype.parse(dtype);
        if (floatType != Dtype.F32 && floatType != Dtype.F16) {
            throw new IllegalArgumentException("safetensors dtype must be F32 or F16, found " + dtype);
        }
        ObjectNode header = JSON.createObjectNode();
        if (metadata != null && !metadata.isEmpty()) {
            ObjectNode meta = header.putObject("__metadata__");
            metadata.forEach(meta::put);
        }
        Dtype[] stored = new Dtype[tensors.size()];
        long offset = 0;
        int i = 0;
        for (Map.Entry<String, TensorEntry> e : tensors.entrySet()) {
            if (e.getKey().equals("__metadata__")) {
                throw new IllegalArgumentException("a tensor cannot be named __metadata__ in safetensors");
            }
            TensorEntry t = e.getValue();
            Dtype type = storedType(t.sourceDtype(), floatType);
            stored[i++] = type;
            long bytes = t.numel() * type.size;
            ObjectNode entry = header.putObject(e.getKey());
            entry.put("dtype", type.name());
            ArrayNode shape = entry.putArray("shape");
            Arrays.stream(t.shape()).forEach(shape::add);
            entry.putArray("data_offsets").add(offset).add(offset + bytes);
            offset += bytes;
        }
        byte[] json;
        try {
            json = JSON.writeValueAsBytes(header);
        } catch (JsonProcessingException e) {
            throw new UncheckedIOException(e); // a tree of strings and numbers always serialises
        }
        int padded = (json.length + 7) / 8 * 8;
        byte[] headerBytes = Arrays.copyOf(json, padded);
        Arrays.fill(headerBytes, json.length, padded, (byte) ' ');

        AtomicFiles.write(out, stream -> {
            stream.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(padded).array());
            stream.write(headerBytes);
            int k = 0;
            for (TensorEntry t : tensors.values()) {
                stored[k++].writeAll(t.read().data(), stream);
            }
        });
    }

    private static Dtype storedType(String sourceDtype, Dtype floatType) {
        Dtype source = Dtype.parse(sourceDtype);
        return source != null && !source.isFloatingPoint() ? source : floatType;
    }
}
