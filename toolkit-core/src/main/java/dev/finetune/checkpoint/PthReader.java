package dev.finetune.checkpoint;

import dev.finetune.checkpoint.RestrictedUnpickler.PyDict;
import dev.finetune.checkpoint.RestrictedUnpickler.StorageRef;
import dev.finetune.checkpoint.RestrictedUnpickler.TensorRef;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Enumeration;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.zip.ZipEntry;
import java.util.zip.ZipException;
import java.util.zip.ZipFile;

/**
 * Reads a PyTorch {@code .pth} state_dict as {@code torch.save} writes it since PyTorch 1.6: a zip holding
 * {@code <archive>/data.pkl} (a pickle describing the tensors), {@code <archive>/data/<key>} (one raw storage per
 * key), {@code <archive>/version} and, since PyTorch 2.0, {@code <archive>/byteorder}.
 *
 * <p>The pickle is read by a restricted unpickler that only builds data and refuses any global outside what a
 * state_dict uses (see {@link Checkpoints} for the formats that are refused outright). A dict that wraps the
 * state_dict under {@code "state_dict"}, {@code "model_state_dict"} or {@code "model"} is unwrapped; other top-level
 * values (an epoch number, optimizer state) are ignored and listed in the metadata as {@code ignored_keys}.
 * Tensors may be strided views (transposed, sliced) and may share storages; every dtype is converted to fp32.
 */
public final class PthReader implements CheckpointReader {
    /** data.pkl of resnet18 is 30 kB; even a model with 100,000 tensors stays far below this. */
    static final int MAX_PICKLE_BYTES = 256 << 20;
    /** Java arrays hold at most about 2^31 elements. */
    static final long MAX_TENSOR_ELEMENTS = Integer.MAX_VALUE - 16;

    private static final List<String> WRAPPER_KEYS = List.of("state_dict", "model_state_dict", "model");

    /** Creates a reader; it holds no state between reads. */
    public PthReader() {
    }

    @Override
    public Checkpoint read(Path file) {
        Checkpoints.requireRegularFile(file);
        ZipFile zip;
        try {
            zip = new ZipFile(file.toFile());
        } catch (ZipException e) {
            throw new CheckpointException(file, notAZip(file, e), e);
        } catch (IOException e) {
            throw new CheckpointException(file, "cannot read: " + e.getMessage(), e);
        }
        try (zip) {
            return read(file, zip);
        } catch (ZipException e) {
            throw new CheckpointException(file, "corrupt zip archive: " + e.getMessage(), e);
        } catch (IOException e) {
            throw new CheckpointException(file, "cannot read: " + e.getMessage(), e);
        }
    }

    private Checkpoint read(Path file, ZipFile zip) throws IOException {
        String archive = archiveName(file, zip);
        Map<String, String> metadata = new LinkedHashMap<>();
        metadata.put("archive", archive);

        ByteOrder order = ByteOrder.LITTLE_ENDIAN;
        ZipEntry byteorder = zip.getEntry(archive + "/byteorder");
        if (byteorder != null) {
            String value = new String(readSmall(zip, byteorder, 64), StandardCharsets.US_ASCII).trim();
            switch (value) {
                case "little" -> order = ByteOrder.LITTLE_ENDIAN;
                case "big" -> order = ByteOrder.BIG_ENDIAN;
                default -> throw new CheckpointException(
                        file, archive + "/byteorder says '" + value + "', expected 'little' or 'big'");
            }
            metadata.put("byteorder", value);
        }

        ZipEntry pickleEntry = zip.getEntry(archive + "/data.pkl");
        if (pickleEntry.getSize() > MAX_PICKLE_BYTES) {
            throw new CheckpointException(file, archive + "/data.pkl is " + pickleEntry.getSize()
                    + " bytes, more than the " + MAX_PICKLE_BYTES + " this reader accepts for a state_dict pickle");
        }
        byte[] pickle = readSmall(zip, pickleEntry, MAX_PICKLE_BYTES);
        RestrictedUnpickler unpickler = new RestrictedUnpickler(file, pickle);
        Object root = unpickler.load();

        LinkedHashMap<String, TensorRef> refs = selectTensors(file, root, metadata);
        LinkedHashMap<String, HostTensor> tensors = materialize(file, zip, archive, order, refs);
        return new Checkpoint(file, CheckpointFormat.PYTORCH_PTH, tensors, metadata);
    }

    /** The single top-level folder holding data.pkl; torch names it after the file stem (or "archive"). */
    private static String archiveName(Path file, ZipFile zip) {
        List<String> archives = new ArrayList<>();
        boolean torchScript = false;
        Enumeration<? extends ZipEntry> entries = zip.entries();
        while (entries.hasMoreElements()) {
            String name = entries.nextElement().getName();
            int slash = name.indexOf('/');
            if (slash > 0 && name.substring(slash + 1).equals("data.pkl")) {
                archives.add(name.substring(0, slash));
            }
            if (slash > 0 && (name.substring(slash + 1).equals("constants.pkl")
                    || name.substring(slash + 1).startsWith("code/"))) {
                torchScript = true;
            }
        }
        if (torchScript) {
            throw new CheckpointException(file, Checkpoints.TORCHSCRIPT_HINT);
        }
        if (archives.isEmpty()) {
            throw new CheckpointException(file, "a zip archive without <archive>/data.pkl, so not a PyTorch checkpoint"
                    + " (torch.save writes <name>/data.pkl and <name>/data/0, ...)");
        }
        if (archives.size() > 1) {
            throw new CheckpointException(file, "holds several archives " + archives + "; torch.save writes one");
        }
        return archives.get(0);
    }

    /** Finds the state_dict in what the pickle built, unwrapping a training checkpoint's dict. */
    private static LinkedHashMap<String, TensorRef> selectTensors(Path file, Object root, Map<String, String> metadata) {
        if (!(root instanceof PyDict top)) {
            throw new CheckpointException(file, "holds a " + RestrictedUnpickler.typeName(root)
                    + ", not a dict of tensors (a state_dict); save model.state_dict() rather than the model");
        }
        PyDict stateDict = top;
        String wrappedKey = null;
        for (String key : WRAPPER_KEYS) {
            if (top.get(key) instanceof PyDict inner && holdsTensor(inner)) {
                stateDict = inner;
                wrappedKey = key;
                break;
            }
        }
        LinkedHashMap<String, TensorRef> tensors = new LinkedHashMap<>();
        List<String> ignored = new ArrayList<>();
        for (Map.Entry<Object, Object> e : stateDict.entries()) {
            String name = keyName(e.getKey());
            if (e.getValue() instanceof TensorRef t) {
                if (!(e.getKey() instanceof String)) {
                    throw new CheckpointException(file, "a tensor is stored under the key " + name + ", a "
                            + RestrictedUnpickler.typeName(e.getKey()) + "; a state_dict's keys are parameter names"
                            + " (str). Re-save it with torch.save(model.state_dict(), f)");
                }
                tensors.put(name, t);
            } else {
                ignored.add(name);
                recordScalar(metadata, name, e.getValue());
            }
        }
        if (wrappedKey != null) {
            metadata.put("wrapped_key", wrappedKey);
            for (Map.Entry<Object, Object> e : top.entries()) {
                String name = keyName(e.getKey());
                if (!name.equals(wrappedKey)) {
                    ignored.add(name);
                    recordScalar(metadata, name, e.getValue());
                }
            }
        }
        if (!ignored.isEmpty()) {
            metadata.put("ignored_keys", String.join(", ", ignored));
        }
        if (tensors.isEmpty()) {
            List<String> keys = new ArrayList<>();
            for (Object k : top.keys()) {
                if (keys.size() == 20) {
                    keys.add("...");
                    break;
                }
                keys.add(keyName(k));
            }
            throw new CheckpointException(file, "holds no tensors at the top level or under " + WRAPPER_KEYS
                    + " (top-level keys: " + keys + ")");
        }
        return tensors;
    }

    private static boolean holdsTensor(PyDict dict) {
        for (Object v : dict.values()) {
            if (v instanceof TensorRef) {
                return true;
            }
        }
        return false;
    }

    private static String keyName(Object key) {
        return key instanceof String s ? s : RestrictedUnpickler.describeSmall(key);
    }

    /** Keeps small scalar values such as {@code epoch=3} visible, as {@code ignored.epoch}. */
    private static void recordScalar(Map<String, String> metadata, String name, Object value) {
        if (value instanceof Long || value instanceof Double || value instanceof Boolean
                || value instanceof String s && s.length() <= 200) {
            metadata.put("ignored." + name, String.valueOf(value));
        }
    }

    private static LinkedHashMap<String, HostTensor> materialize(
            Path file, ZipFile zip, String archive, ByteOrder order, LinkedHashMap<String, TensorRef> refs)
            throws IOException {
        long fileSize = Files.size(file);
        // Zero strides (an expanded tensor saved as is) can make a tensor far larger than its storage; a crafted file
        // could claim billions of values over a one-element storage. Real state_dicts hold fewer values than bytes.
        long budget = 4 * fileSize + (1 << 20);
        long total = 0;
        // torch.save stores storages uncompressed, so together they fit in the file; a crafted zip of deflated
        // storages could otherwise inflate a 3.5 MB file to gigabytes (each storage alone passes the size check).
        long storageBytes = 0;
        Map<String, ByteBuffer> storages = new HashMap<>();
        LinkedHashMap<String, HostTensor> tensors = new LinkedHashMap<>();
        for (Map.Entry<String, TensorRef> e : refs.entrySet()) {
            String name = e.getKey();
            TensorRef ref = e.getValue();
            long numel = checkedNumel(file, name, ref.shape());
            total += numel;
            if (total > budget) {
                throw new CheckpointException(file, "its tensors expand to more than " + budget
                        + " values, far more than a " + fileSize + "-byte file holds (tensor '" + name + "' is "
                        + numel + " values); refusing to allocate them");
            }
            StorageRef storage = ref.storage();
            if (numel == 0) {
                // An empty tensor reads nothing; its storage is neither read nor counted.
                tensors.put(name, new HostTensor(storage.dtype().name(), ref.shape().clone(), new float[0]));
                continue;
            }
            ByteBuffer bytes = storages.get(storage.key());
            if (bytes == null) {
                bytes = readStorage(file, zip, archive, storage, fileSize, storageBytes).order(order);
                storageBytes += bytes.capacity();
                storages.put(storage.key(), bytes);
            }
            float[] values = gather(file, name, ref, (int) numel, bytes);
            tensors.put(name, new HostTensor(storage.dtype().name(), ref.shape().clone(), values));
        }
        return tensors;
    }

    private static long checkedNumel(Path file, String name, long[] shape) {
        long n = 1;
        try {
            for (long d : shape) {
                n = Math.multiplyExact(n, d);
            }
        } catch (ArithmeticException e) {
            n = Long.MAX_VALUE;
        }
        if (n > MAX_TENSOR_ELEMENTS) {
            throw new CheckpointException(file, "tensor '" + name + "' of shape " + Arrays.toString(shape)
                    + " has more than " + MAX_TENSOR_ELEMENTS + " values, the most a JVM array holds");
        }
        return n;
    }

    /**
     * Reads one storage, after checking its claimed size against the zip entry and the file.
     *
     * @param readBefore bytes of the distinct storages read so far
     */
    private static ByteBuffer readStorage(Path file, ZipFile zip, String archive, StorageRef s, long fileSize,
            long readBefore) throws IOException {
        String entryName = archive + "/data/" + s.key();
        ZipEntry entry = zip.getEntry(entryName);
        if (entry == null) {
            throw new CheckpointException(file, "storage " + entryName + " named by data.pkl is missing from the zip");
        }
        long claimed;
        try {
            claimed = Math.multiplyExact(s.numel(), (long) s.dtype().size);
        } catch (ArithmeticException e) {
            claimed = Long.MAX_VALUE;
        }
        String claim = "data.pkl claims " + s.numel() + " x " + s.dtype() + " = " + claimed + " bytes";
        if (entry.getSize() >= 0 && entry.getSize() < claimed) {
            throw new CheckpointException(file, "storage " + entryName + " holds " + entry.getSize() + " bytes but "
                    + claim + " (truncated or corrupt file)");
        }
        if (claimed > fileSize) {
            throw new CheckpointException(file, "storage " + entryName + ": " + claim + ", more than the whole "
                    + fileSize + "-byte file (corrupt file)");
        }
        if (claimed > MAX_TENSOR_ELEMENTS) {
            throw new CheckpointException(file, "storage " + entryName + " is " + claimed
                    + " bytes; this reader holds at most " + MAX_TENSOR_ELEMENTS + " bytes per storage");
        }
        if (readBefore + claimed > fileSize) {
            throw new CheckpointException(file, "its storages add up to more than " + (readBefore + claimed)
                    + " bytes, more than the whole " + fileSize + "-byte file (torch.save stores them uncompressed):"
                    + " a compressed or crafted file; refusing to inflate it");
        }
        byte[] bytes = new byte[(int) claimed];
        int read;
        try (InputStream in = zip.getInputStream(entry)) {
            read = in.readNBytes(bytes, 0, bytes.length);
        }
        if (read < bytes.length) {
            throw new CheckpointException(file, "storage " + entryName + " ends after " + read + " bytes but " + claim
                    + " (truncated or corrupt file)");
        }
        return ByteBuffer.wrap(bytes);
    }

    /** Copies a strided view of a storage into a dense row-major array, converting to fp32. */
    private static float[] gather(Path file, String name, TensorRef ref, int numel, ByteBuffer storage) {
        float[] out = new float[numel];
        if (numel == 0) {
            return out;
        }
        long[] shape = ref.shape();
        long[] stride = ref.stride();
        StorageRef s = ref.storage();
        long last = ref.offset();
        try {
            for (int d = 0; d < shape.length; d++) {
                last = Math.addExact(last, Math.multiplyExact(shape[d] - 1, stride[d]));
            }
        } catch (ArithmeticException e) {
            last = Long.MAX_VALUE;
        }
        if (last >= s.numel()) {
            throw new CheckpointException(file, "tensor '" + name + "' (offset " + ref.offset() + ", shape "
                    + Arrays.toString(shape) + ", stride " + Arrays.toString(stride)
                    + ") reaches element " + last + " of storage " + s.key() + ", which holds " + s.numel());
        }
        Dtype dtype = s.dtype();
        int rank = shape.length;
        long[] index = new long[rank];
        long at = ref.offset();
        for (int i = 0; i < numel; i++) {
            out[i] = dtype.read(storage, (int) (at * dtype.size));
            for (int d = rank - 1; d >= 0; d--) {
                at += stride[d];
                if (++index[d] < shape[d]) {
                    break;
                }
                at -= stride[d] * shape[d];
                index[d] = 0;
            }
        }
        return out;
    }

    private static byte[] readSmall(ZipFile zip, ZipEntry entry, int limit) throws IOException {
        try (InputStream in = zip.getInputStream(entry)) {
            byte[] bytes = in.readNBytes(limit + 1);
            if (bytes.length > limit) {
                throw new ZipException(entry.getName() + " is larger than " + limit + " bytes");
            }
            return bytes;
        }
    }

    private static String notAZip(Path file, ZipException e) {
        byte[] head = Checkpoints.head(file, 4);
        if (head.length >= 2 && head[0] == 'P' && head[1] == 'K') {
            return "truncated or corrupt zip archive (" + e.getMessage() + "); the download or copy may be incomplete";
        }
        if (head.length >= 1 && (head[0] & 0xFF) == 0x80) {
            return Checkpoints.LEGACY_HINT;
        }
        return "not a zip archive, so not a PyTorch .pth (torch.save writes a zip since PyTorch 1.6)";
    }
}
