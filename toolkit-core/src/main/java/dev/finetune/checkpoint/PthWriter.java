package dev.finetune.checkpoint;

import dev.finetune.io.AtomicFiles;
import dev.finetune.io.IOConsumer;
import java.io.ByteArrayOutputStream;
import java.io.FilterOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.LocalDateTime;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.zip.CRC32;
import java.util.zip.CheckedOutputStream;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;

/**
 * Writes a state_dict as {@code torch.save} does (PyTorch 1.6+ zip format), so that Python users load it with
 * {@code torch.load(f, weights_only=True)} and {@code model.load_state_dict(...)}.
 *
 * <p>The zip holds {@code <stem>/data.pkl} (a protocol-2 pickle of an {@code OrderedDict} whose values are
 * {@code torch._utils._rebuild_tensor_v2} calls on persistent storage ids, the only constructs the weights-only
 * loader needs), one stored (uncompressed) {@code <stem>/data/<i>} per tensor, {@code <stem>/byteorder} and
 * {@code <stem>/version}. Data entries start on 64-byte boundaries like torch's own, which lets newer PyTorch memory
 * map them. Output is deterministic: the same tensors give the same bytes.
 *
 * <p>Floating-point tensors are written as fp32 (the values a {@link HostTensor} holds, without loss). Integer and
 * bool tensors keep their {@link HostTensor#sourceDtype()} (int64 for {@code num_batches_tracked}): the file then
 * has the types {@code model.state_dict()} has, so it matches tensor for tensor, not only after
 * {@code load_state_dict} has cast values back into the model's buffers.
 */
public final class PthWriter {
    private static final int ALIGNMENT = 64;
    /** Extra-field id torch uses for its alignment padding; any id unknown to zip readers would do. */
    private static final int PADDING_FIELD_ID = 0x4246;
    /**
     * A fixed timestamp keeps the output reproducible. Not 1980-01-01 00:00 itself: Java reads that DOS time as
     * "before 1980" and adds an extended-timestamp field, which would shift the data off its alignment.
     */
    private static final LocalDateTime ENTRY_TIME = LocalDateTime.of(1980, 1, 2, 0, 0);

    private PthWriter() {
    }

    /**
     * Writes {@code tensors}, in map order, to {@code out}, replacing it atomically.
     *
     * @throws dev.finetune.FinetuneException {@link dev.finetune.ErrorKind#OUTPUT} if the file cannot be written
     */
    public static void write(Path out, Map<String, HostTensor> tensors) {
        String archive = archiveName(out);
        List<HostTensor> values = new ArrayList<>(tensors.values());
        List<Dtype> types = new ArrayList<>();
        for (HostTensor t : values) {
            types.add(storedType(t));
        }
        byte[] pickle = pickle(new ArrayList<>(tensors.keySet()), values, types);
        AtomicFiles.write(out, stream -> {
            CountingStream counting = new CountingStream(stream);
            try (ZipOutputStream zip = new ZipOutputStream(counting)) {
                putStored(zip, counting, archive + "/data.pkl", s -> s.write(pickle));
                putStored(zip, counting, archive + "/byteorder", s -> s.write(ascii("little")));
                for (int i = 0; i < values.size(); i++) {
                    HostTensor t = values.get(i);
                    Dtype type = types.get(i);
                    putStored(zip, counting, archive + "/data/" + i, s -> type.writeAll(t.data(), s));
                }
                putStored(zip, counting, archive + "/version", s -> s.write(ascii("3\n")));
            }
        });
    }

    /** torch names the folder inside the zip after the file name without extension. */
    static String archiveName(Path out) {
        String name = out.getFileName().toString();
        int dot = name.lastIndexOf('.');
        String stem = dot > 0 ? name.substring(0, dot) : name;
        // Keep zip entry names plain ASCII so every zip reader (torch uses miniz) agrees on them.
        stem = stem.replaceAll("[^A-Za-z0-9._-]", "_");
        return stem.isEmpty() ? "archive" : stem;
    }

    private static Dtype storedType(HostTensor t) {
        Dtype source = Dtype.parse(t.sourceDtype());
        return source != null && !source.isFloatingPoint() ? source : Dtype.F32;
    }

    private static String storageClass(Dtype type) {
        return switch (type) {
            case F32 -> "FloatStorage";
            case I64 -> "LongStorage";
            case I32 -> "IntStorage";
            case I16 -> "ShortStorage";
            case I8 -> "CharStorage";
            case U8 -> "ByteStorage";
            case BOOL -> "BoolStorage";
            case F64, F16, BF16 -> throw new IllegalStateException("floating point is written as F32: " + type);
        };
    }

    /** A STORED entry; a zip needs the size and CRC before the data, so the body runs twice. */
    private static void putStored(ZipOutputStream zip, CountingStream counting, String name,
            IOConsumer<OutputStream> body) throws IOException {
        CRC32 crc = new CRC32();
        CountingStream sizing = new CountingStream(new CheckedOutputStream(OutputStream.nullOutputStream(), crc));
        body.accept(sizing);
        ZipEntry entry = new ZipEntry(name);
        entry.setMethod(ZipEntry.STORED);
        entry.setSize(sizing.count);
        entry.setCompressedSize(sizing.count);
        entry.setCrc(crc.getValue());
        entry.setTimeLocal(ENTRY_TIME);
        // Pad the local header's extra field so the data starts on an ALIGNMENT boundary. (Entries over 4 GB get a
        // zip64 field as well and lose the alignment; readers do not need it.)
        int nameLength = name.getBytes(StandardCharsets.UTF_8).length;
        long dataStart = counting.count + 30 + nameLength + 4;
        int padding = (int) ((ALIGNMENT - dataStart % ALIGNMENT) % ALIGNMENT);
        byte[] extra = new byte[4 + padding];
        extra[0] = (byte) PADDING_FIELD_ID;
        extra[1] = (byte) (PADDING_FIELD_ID >>> 8);
        extra[2] = (byte) padding;
        extra[3] = (byte) (padding >>> 8);
        Arrays.fill(extra, 4, extra.length, (byte) 'Z');
        entry.setExtra(extra);
        zip.putNextEntry(entry);
        body.accept(zip);
        zip.closeEntry();
    }

    private static byte[] ascii(String s) {
        return s.getBytes(StandardCharsets.US_ASCII);
    }

    // ---- the pickle ----

    static byte[] pickle(List<String> names, List<HostTensor> tensors, List<Dtype> types) {
        PickleBuilder p = new PickleBuilder();
        p.op(0x80).op(2); // PROTO 2, what torch.save uses
        p.global("collections", "OrderedDict").op(')').op('R');
        p.op('(');
        for (int i = 0; i < tensors.size(); i++) {
            HostTensor t = tensors.get(i);
            p.unicode(names.get(i));
            p.global("torch._utils", "_rebuild_tensor_v2");
            p.op('(');
            // persistent id ('storage', torch.XStorage, key, location, numel)
            p.op('(').unicode("storage").global("torch", storageClass(types.get(i))).unicode(Integer.toString(i))
                    .unicode("cpu").integer(t.numel()).op('t');
            p.op('Q'); // BINPERSID
            p.integer(0); // storage offset
            p.tuple(t.shape());
            p.tuple(contiguousStrides(t.shape()));
            p.op(0x89); // requires_grad=False
            p.global("collections", "OrderedDict").op(')').op('R'); // backward_hooks
            p.op('t').op('R');
        }
        p.op('u').op('.'); // SETITEMS, STOP
        return p.bytes.toByteArray();
    }

    static long[] contiguousStrides(long[] shape) {
        long[] strides = new long[shape.length];
        long s = 1;
        for (int d = shape.length - 1; d >= 0; d--) {
            strides[d] = s;
            s *= Math.max(shape[d], 1);
        }
        return strides;
    }

    private static final class PickleBuilder {
        final ByteArrayOutputStream bytes = new ByteArrayOutputStream();

        PickleBuilder op(int code) {
            bytes.write(code);
            return this;
        }

        PickleBuilder global(String module, String name) {
            op('c');
            bytes.writeBytes(ascii(module + "\n" + name + "\n"));
            return this;
        }

        PickleBuilder unicode(String s) {
            byte[] utf8 = s.getBytes(StandardCharsets.UTF_8);
            op('X');
            le(utf8.length, 4);
            bytes.writeBytes(utf8);
            return this;
        }

        PickleBuilder integer(long v) {
            if (v >= 0 && v < 0x100) {
                op('K').le(v, 1);
            } else if (v >= 0 && v < 0x10000) {
                op('M').le(v, 2);
            } else if (v >= Integer.MIN_VALUE && v <= Integer.MAX_VALUE) {
                op('J').le(v, 4);
            } else {
                byte[] big = BigInteger.valueOf(v).toByteArray(); // minimal two's complement, big-endian
                op(0x8a).op(big.length);
                for (int i = big.length - 1; i >= 0; i--) {
                    bytes.write(big[i]);
                }
            }
            return this;
        }

        PickleBuilder tuple(long[] items) {
            if (items.length == 0) {
                return op(')');
            }
            if (items.length > 3) {
                op('(');
            }
            for (long v : items) {
                integer(v);
            }
            return op(switch (items.length) {
                case 1 -> 0x85;
                case 2 -> 0x86;
                case 3 -> 0x87;
                default -> 't';
            });
        }

        private PickleBuilder le(long v, int n) {
            for (int i = 0; i < n; i++) {
                bytes.write((int) (v >>> (8 * i)) & 0xFF);
            }
            return this;
        }
    }

    /** Counts bytes, to know where the next local zip header starts. */
    private static final class CountingStream extends FilterOutputStream {
        long count;

        CountingStream(OutputStream out) {
            super(out);
        }

        @Override
        public void write(int b) throws IOException {
            out.write(b);
            count++;
        }

        @Override
        public void write(byte[] b, int off, int len) throws IOException {
            out.write(b, off, len);
            count += len;
        }
    }
}
