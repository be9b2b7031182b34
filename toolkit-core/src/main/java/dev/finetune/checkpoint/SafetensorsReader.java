package dev.finetune.checkpoint;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Reads safetensors files: an 8-byte little-endian header length N, N bytes of JSON mapping each tensor name to
 * {@code {"dtype", "shape", "data_offsets": [begin, end]}} (offsets relative to the first byte after the header) plus
 * an optional {@code "__metadata__"} string map, then the raw little-endian data.
 *
 * <p>Every number in the header is checked against the file before anything is allocated: a header that claims a
 * 100 GB tensor in a 1 kB file is an error, not an out-of-memory. Data is read with positional reads in chunks, so
 * memory holds only the fp32 result. The file's dtype is kept as {@link HostTensor#sourceDtype()}.
 */
public final class SafetensorsReader implements CheckpointReader {
    /** The reference implementation's limit; real headers are a few hundred kB. */
    static final long MAX_HEADER_BYTES = 100L << 20;

    private static final ObjectMapper JSON = new ObjectMapper()
            .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .enable(DeserializationFeature.FAIL_ON_READING_DUP_TREE_KEY);

    /** One tensor's header entry, validated. */
    record Entry(String name, Dtype dtype, long[] shape, long numel, long begin, long end) {
    }

    /** The parsed header: metadata, entries in header order, and where the data section starts. */
    record Header(Map<String, String> metadata, List<Entry> entries, long dataStart) {
    }

    /** Creates a reader; it holds no state between reads. */
    public SafetensorsReader() {
    }

    @Override
    public Checkpoint read(Path file) {
        Checkpoints.requireRegularFile(file);
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
            Header header = readHeader(file, channel);
            LinkedHashMap<String, HostTensor> tensors = new LinkedHashMap<>();
            for (Entry e : header.entries()) {
                float[] values = readValues(file, channel, header.dataStart(), e);
                tensors.put(e.name(), new HostTensor(e.dtype().name(), e.shape(), values));
            }
            CheckpointFormat format = Checkpoints.FINETUNE_FORMAT.equals(header.metadata().get(Checkpoints.FORMAT_KEY))
                    ? CheckpointFormat.FINETUNE
                    : CheckpointFormat.SAFETENSORS;
            return new Checkpoint(file, format, tensors, header.metadata());
        } catch (IOException e) {
            throw new CheckpointException(file, "cannot read: " + e.getMessage(), e);
        }
    }

    /** Whether the file is a safetensors file marked as this toolkit's checkpoint. */
    static boolean isFinetune(Path file) {
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
            Header header = readHeader(file, channel);
            return Checkpoints.FINETUNE_FORMAT.equals(header.metadata().get(Checkpoints.FORMAT_KEY));
        } catch (IOException e) {
            throw new CheckpointException(file, "cannot read: " + e.getMessage(), e);
        }
    }

    static Header readHeader(Path file, FileChannel channel) throws IOException {
        long size = channel.size();
        if (size < 8) {
            throw new CheckpointException(file, "is " + size + " bytes, too short for safetensors (which starts with"
                    + " an 8-byte header length)");
        }
        ByteBuffer lengthBytes = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
        readFully(channel, lengthBytes, 0);
        long headerLength = lengthBytes.getLong(0);
        if (headerLength < 0 || headerLength > size - 8) {
            throw new CheckpointException(file, "safetensors header length " + Long.toUnsignedString(headerLength)
                    + " (first 8 bytes) runs past the end of the " + size + "-byte file (truncated or not safetensors)");
        }
        if (headerLength > MAX_HEADER_BYTES) {
            throw new CheckpointException(file, "safetensors header length " + headerLength + " exceeds the "
                    + MAX_HEADER_BYTES + "-byte limit");
        }
        if (headerLength < 2) {
            throw new CheckpointException(file, "safetensors header length " + headerLength + " is too small for {}");
        }
        ByteBuffer headerBytes = ByteBuffer.allocate((int) headerLength);
        readFully(channel, headerBytes, 8);
        byte[] json = headerBytes.array();
        if (json[0] != '{') {
            throw new CheckpointException(file, "safetensors header does not start with '{'");
        }
        JsonNode root;
        try {
            root = JSON.readTree(json);
        } catch (JsonProcessingException e) {
            String where = e.getLocation() != null ? " at header byte " + e.getLocation().getByteOffset() : "";
            throw new CheckpointException(file, "safetensors header is not valid JSON" + where + ": "
                    + e.getOriginalMessage(), e);
        }
        if (root == null || !root.isObject()) {
            throw new CheckpointException(file, "safetensors header is not a JSON object");
        }
        long dataStart = 8 + headerLength;
        long dataLength = size - dataStart;
        Map<String, String> metadata = new LinkedHashMap<>();
        List<Entry> entries = new ArrayList<>();
        Iterator<Map.Entry<String, JsonNode>> fields = root.fields();
        while (fields.hasNext()) {
            Map.Entry<String, JsonNode> field = fields.next();
            if (field.getKey().equals("__metadata__")) {
                readMetadata(file, field.getValue(), metadata);
            } else {
                entries.add(entry(file, field.getKey(), field.getValue(), dataLength));
            }
        }
        checkOverlaps(file, entries);
        return new Header(metadata, entries, dataStart);
    }

    private static void readMetadata(Path file, JsonNode node, Map<String, String> metadata) {
        if (!node.isObject()) {
            throw new CheckpointException(file, "safetensors __metadata__ is not a JSON object");
        }
        Iterator<Map.Entry<String, JsonNode>> fields = node.fields();
        while (fields.hasNext()) {
            Map.Entry<String, JsonNode> f = fields.next();
            if (!f.getValue().isTextual()) {
                throw new CheckpointException(file, "safetensors __metadata__." + f.getKey()
                        + " is not a string (the format allows only string values)");
            }
            metadata.put(f.getKey(), f.getValue().textValue());
        }
    }

    private static Entry entry(Path file, String name, JsonNode node, long dataLength) {
        String where = "tensor '" + name + "'";
        if (!node.isObject()) {
            throw new CheckpointException(file, where + " is not a JSON object in the safetensors header");
        }
        JsonNode dtypeNode = node.get("dtype");
        if (dtypeNode == null || !dtypeNode.isTextual()) {
            throw new CheckpointException(file, where + " has no dtype string");
        }
        Dtype dtype = Dtype.parse(dtypeNode.textValue());
        if (dtype == null) {
            throw new CheckpointException(file, where + " has unsupported dtype '" + dtypeNode.textValue()
                    + "' (supported: " + Dtype.names() + ")");
        }
        long[] shape = nonNegativeLongs(file, where + " shape", node.get("shape"), -1);
        long[] offsets = nonNegativeLongs(file, where + " data_offsets", node.get("data_offsets"), 2);
        long begin = offsets[0];
        long end = offsets[1];
        if (begin > end) {
            throw new CheckpointException(file, where + " data_offsets [" + begin + ", " + end + "] end before they"
                    + " begin");
        }
        if (end > dataLength) {
            throw new CheckpointException(file, where + " data_offsets [" + begin + ", " + end + "] run past the end"
                    + " of the data section, which holds " + dataLength + " bytes (truncated or corrupt file)");
        }
        long numel = 1;
        long bytes;
        try {
            for (long d : shape) {
                numel = Math.multiplyExact(numel, d);
            }
            bytes = Math.multiplyExact(numel, (long) dtype.size);
        } catch (ArithmeticException e) {
            throw new CheckpointException(file, where + " shape " + Arrays.toString(shape) + " overflows");
        }
        if (bytes != end - begin) {
            throw new CheckpointException(file, where + " of shape " + Arrays.toString(shape) + " and dtype " + dtype
                    + " needs " + bytes + " bytes but its data_offsets [" + begin + ", " + end + "] span "
                    + (end - begin));
        }
        if (numel > PthReader.MAX_TENSOR_ELEMENTS) {
            throw new CheckpointException(file, where + " has " + numel + " values, more than the "
                    + PthReader.MAX_TENSOR_ELEMENTS + " a JVM array holds");
        }
        return new Entry(name, dtype, shape, numel, begin, end);
    }

    private static long[] nonNegativeLongs(Path file, String what, JsonNode node, int requiredLength) {
        if (node == null || !node.isArray() || requiredLength >= 0 && node.size() != requiredLength) {
            throw new CheckpointException(file, what + " is missing or not an array"
                    + (requiredLength >= 0 ? " of " + requiredLength + " integers" : " of integers"));
        }
        long[] out = new long[node.size()];
        for (int i = 0; i < out.length; i++) {
            JsonNode v = node.get(i);
            if (!v.isIntegralNumber() || !v.canConvertToLong() || v.longValue() < 0) {
                throw new CheckpointException(file, what + "[" + i + "] is " + v + ", expected a non-negative integer"
                        + " below 2^63");
            }
            out[i] = v.longValue();
        }
        return out;
    }

    private static void checkOverlaps(Path file, List<Entry> entries) {
        List<Entry> sorted = new ArrayList<>(entries);
        sorted.sort(Comparator.comparingLong(Entry::begin).thenComparingLong(Entry::end));
        Entry previous = null;
        for (Entry e : sorted) {
            if (e.begin() == e.end()) {
                continue; // empty tensors occupy no bytes and cannot overlap
            }
            if (previous != null && e.begin() < previous.end()) {
                throw new CheckpointException(file, "tensors '" + previous.name() + "' [" + previous.begin() + ", "
                        + previous.end() + "] and '" + e.name() + "' [" + e.begin() + ", " + e.end() + "] overlap in"
                        + " the data section");
            }
            previous = e;
        }
    }

    private static float[] readValues(Path file, FileChannel channel, long dataStart, Entry e) throws IOException {
        int numel = (int) e.numel();
        float[] out = new float[numel];
        int size = e.dtype().size;
        int chunk = Math.max(1, (1 << 20) / size);
        ByteBuffer buf = ByteBuffer.allocate(Math.min(chunk, Math.max(numel, 1)) * size)
                .order(ByteOrder.LITTLE_ENDIAN);
        long position = dataStart + e.begin();
        int done = 0;
        while (done < numel) {
            int n = Math.min(buf.capacity() / size, numel - done);
            buf.clear().limit(n * size);
            try {
                readFully(channel, buf, position);
            } catch (EOFException eof) {
                throw new CheckpointException(file, "file ends inside tensor '" + e.name() + "' (truncated)", eof);
            }
            e.dtype().readAll(buf, n, out, done);
            done += n;
            position += (long) n * size;
        }
        return out;
    }

    private static void readFully(FileChannel channel, ByteBuffer buf, long position) throws IOException {
        long at = position;
        while (buf.hasRemaining()) {
            int n = channel.read(buf, at);
            if (n < 0) {
                throw new EOFException("end of file at byte " + at);
            }
            at += n;
        }
    }
}
