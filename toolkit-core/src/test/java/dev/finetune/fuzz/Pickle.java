package dev.finetune.fuzz;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.zip.CRC32;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;

/**
 * Writes pickles opcode by opcode, the way {@code torch.save} (protocol 2) spells a state_dict, so tests can build
 * exactly the malformed or hostile stream they need; and packs them into a {@code .pth} zip.
 */
final class Pickle {
    // Opcodes, named as in Python's pickletools.
    static final int PROTO = 0x80;
    static final int STOP = '.';
    static final int MARK = '(';
    static final int TUPLE = 't';
    static final int TUPLE1 = 0x85;
    static final int TUPLE2 = 0x86;
    static final int EMPTY_TUPLE = ')';
    static final int EMPTY_LIST = ']';
    static final int EMPTY_DICT = '}';
    static final int APPEND = 'a';
    static final int SETITEM = 's';
    static final int SETITEMS = 'u';
    static final int REDUCE = 'R';
    static final int BUILD = 'b';
    static final int BINPERSID = 'Q';
    static final int NEWFALSE = 0x89;
    static final int BINPUT = 'q';
    static final int LONG_BINPUT = 'r';
    static final int BINGET = 'h';
    static final int LONG_BINGET = 'j';
    static final int DUP = '2';
    static final int STACK_GLOBAL = 0x93;
    static final int NEWOBJ = 0x81;

    private final ByteArrayOutputStream out = new ByteArrayOutputStream();

    Pickle op(int... opcodes) {
        for (int b : opcodes) {
            out.write(b);
        }
        return this;
    }

    Pickle raw(byte[] bytes) {
        out.writeBytes(bytes);
        return this;
    }

    Pickle proto(int version) {
        return op(PROTO, version);
    }

    /** GLOBAL: {@code c module\nname\n}. */
    Pickle global(String module, String name) {
        op('c');
        return raw((module + "\n" + name + "\n").getBytes(StandardCharsets.UTF_8));
    }

    /** SHORT_BINUNICODE then STACK_GLOBAL, as protocol 4 spells a global. */
    Pickle stackGlobal(String module, String name) {
        return str(module).str(name).op(STACK_GLOBAL);
    }

    /** BINUNICODE. */
    Pickle str(String s) {
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        op('X').u32(b.length);
        return raw(b);
    }

    /** BININT1, BININT or LONG1 (8 bytes), whichever fits. */
    Pickle integer(long v) {
        if (v >= 0 && v < 256) {
            return op('K', (int) v);
        }
        if (v >= Integer.MIN_VALUE && v <= Integer.MAX_VALUE) {
            op('J');
            return raw(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt((int) v).array());
        }
        op(0x8a, 8);
        return raw(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(v).array());
    }

    Pickle u32(long v) {
        return raw(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt((int) v).array());
    }

    Pickle u64(long v) {
        return raw(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(v).array());
    }

    Pickle ints(long... values) {
        op(MARK);
        for (long v : values) {
            integer(v);
        }
        return op(TUPLE);
    }

    /** {@code collections.OrderedDict()} left on the stack, ready for {@code MARK ... SETITEMS}. */
    Pickle orderedDict() {
        return global("collections", "OrderedDict").op(EMPTY_TUPLE, REDUCE);
    }

    /**
     * {@code torch._utils._rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())} over the storage
     * {@code ('storage', torch.<type>, key, 'cpu', numel)}, exactly as torch.save writes it.
     */
    Pickle tensor(String storageType, String key, long numel, long offset, long[] size, long[] stride) {
        global("torch._utils", "_rebuild_tensor_v2");
        op(MARK);
        op(MARK).str("storage").global("torch", storageType).str(key).str("cpu").integer(numel).op(TUPLE);
        op(BINPERSID);
        integer(offset).ints(size).ints(stride).op(NEWFALSE);
        orderedDict();
        return op(TUPLE, REDUCE);
    }

    /** A contiguous fp32 tensor of the given shape over its own storage. */
    Pickle floatTensor(String key, long... shape) {
        long numel = 1;
        for (long d : shape) {
            numel *= d;
        }
        long[] stride = new long[shape.length];
        long s = 1;
        for (int i = shape.length - 1; i >= 0; i--) {
            stride[i] = s;
            s *= shape[i];
        }
        return tensor("FloatStorage", key, numel, 0, shape, stride);
    }

    byte[] bytes() {
        return out.toByteArray();
    }

    /** A pickle of {@code OrderedDict(name=<one fp32 tensor of shape [2]>)} over storage "0". */
    static byte[] oneTensor(String name) {
        return new Pickle().proto(2).orderedDict().op(MARK).str(name).floatTensor("0", 2).op(SETITEMS, STOP).bytes();
    }

    /**
     * Writes a torch.save-style zip: {@code archive/data.pkl}, {@code archive/data/<key>} for each storage, and
     * {@code archive/version}; entries are stored uncompressed, as torch writes them.
     */
    static void writePth(Path file, byte[] pickle, Map<String, byte[]> storages) throws IOException {
        Map<String, byte[]> entries = new java.util.LinkedHashMap<>();
        entries.put("archive/data.pkl", pickle);
        storages.forEach((key, bytes) -> entries.put("archive/data/" + key, bytes));
        entries.put("archive/version", "3\n".getBytes(StandardCharsets.US_ASCII));
        writeZip(file, entries, ZipEntry.STORED);
    }

    /** Writes a zip of the given entries, all with {@code method} (STORED or DEFLATED). */
    static void writeZip(Path file, Map<String, byte[]> entries, int method) throws IOException {
        try (OutputStream os = Files.newOutputStream(file); ZipOutputStream z = new ZipOutputStream(os)) {
            for (Map.Entry<String, byte[]> e : entries.entrySet()) {
                ZipEntry entry = new ZipEntry(e.getKey());
                entry.setMethod(method);
                if (method == ZipEntry.STORED) {
                    entry.setSize(e.getValue().length);
                    CRC32 crc = new CRC32();
                    crc.update(e.getValue());
                    entry.setCrc(crc.getValue());
                }
                z.putNextEntry(entry);
                z.write(e.getValue());
                z.closeEntry();
            }
        }
    }

    /** A storage of n little-endian fp32 values 0, 1, 2, ... */
    static byte[] floats(int n) {
        ByteBuffer b = ByteBuffer.allocate(4 * n).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < n; i++) {
            b.putFloat(i);
        }
        return b.array();
    }
}
