package dev.finetune.checkpoint;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.finetune.checkpoint.RestrictedUnpickler.PyDict;
import dev.finetune.checkpoint.RestrictedUnpickler.TensorRef;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The restricted unpickler on hand-written pickles: what it builds, and what it refuses without running. */
class RestrictedUnpicklerTest {
    private static final Path FILE = Path.of("crafted.pth");

    @Test
    void readsWhatPthWriterWrites() {
        byte[] pickle = PthWriter.pickle(List.of("a", "big"),
                List.of(HostTensor.of(new long[] {2, 1, 1, 3}, new float[6]), HostTensor.of(new long[] {70000},
                        new float[70000])),
                List.of(Dtype.F32, Dtype.F32));

        PyDict dict = assertInstanceOf(PyDict.class, load(pickle));
        TensorRef a = assertInstanceOf(TensorRef.class, dict.get("a"));
        assertArrayEquals(new long[] {2, 1, 1, 3}, a.shape());
        assertArrayEquals(new long[] {3, 3, 3, 1}, a.stride());
        assertEquals(6, a.storage().numel());
        TensorRef big = assertInstanceOf(TensorRef.class, dict.get("big"));
        assertEquals(70000, big.storage().numel());
        assertEquals("1", big.storage().key());
    }

    @Test
    void largeIntegersUseLong1() {
        // LONG1 with 5 bytes: 5_000_000_000 little-endian two's complement
        byte[] pickle = bytes(0x80, 2, 0x8a, 5, 0x00, 0xf2, 0x05, 0x2a, 0x01, '.');
        assertEquals(5_000_000_000L, load(pickle));
        assertEquals(-1L, load(bytes(0x8a, 1, 0xff, '.')));
    }

    @Test
    void refusesGlobalOpcodeNamingTheGlobal() {
        byte[] pickle = concat(bytes(0x80, 2, 'c'), ascii("posix\nsystem\n"),
                bytes('X', 4, 0, 0, 0), ascii("true"), bytes(0x85, 'R', '.'));
        assertRefused(pickle, "posix.system");
    }

    @Test
    void refusesStackGlobal() {
        byte[] pickle = concat(bytes(0x80, 4, 0x8c, 8), ascii("builtins"), bytes(0x8c, 4), ascii("eval"),
                bytes(0x93, '.'));
        assertRefused(pickle, "builtins.eval");
    }

    @Test
    void refusesInstOpcode() {
        byte[] pickle = concat(bytes('(', 'i'), ascii("subprocess\nPopen\n"), bytes('.'));
        assertRefused(pickle, "subprocess.Popen");
    }

    @Test
    void refusesCallingAStorageClass() {
        byte[] pickle = concat(bytes('c'), ascii("torch\nFloatStorage\n"), bytes(')', 'R', '.'));
        assertProblem(pickle, "calls torch.FloatStorage, which a state_dict never calls");
    }

    @Test
    void hugeStringLengthFailsWithoutAllocating() {
        assertProblem(bytes('X', 0xf0, 0xff, 0xff, 0xff, 'a'), "a length of 4294967280 bytes runs past the end");
        assertProblem(bytes(0x8d, 0, 0, 0, 0, 0, 0, 0, 0x40, 'a'), "runs past the end of data.pkl");
        assertProblem(bytes(0x8b, 0xff, 0xff, 0xff, 0x7f), "runs past the end of data.pkl");
    }

    @Test
    void memoAndStackMistakes() {
        assertProblem(bytes('h', 7, '.'), "memo entry 7, which was never stored");
        assertProblem(bytes('R'), "empty stack");
        assertProblem(bytes('t'), "closes a MARK that was never opened");
        assertProblem(bytes(0xff), "unknown pickle opcode 0xff");
        assertProblem(bytes(0x80, 2, ')'), "ends without a STOP");
    }

    @Test
    void deeplyNestedTuplesAreRefused() {
        byte[] pickle = new byte[203];
        pickle[0] = ')';
        Arrays.fill(pickle, 1, 202, (byte) 0x85);
        pickle[202] = '.';
        assertProblem(pickle, "tuples nested more than 100 deep");
    }

    @Test
    void persistentIdMustBeAStorage() {
        byte[] evil = concat(bytes('('), str("storage"), bytes('c'), ascii("torch\nFloatStorage\n"), str("../../x"),
                str("cpu"), bytes('K', 1, 't', 'Q', '.'));
        assertProblem(evil, "storage key '../../x' is not a plain name");
        assertProblem(concat(str("evil"), bytes(0x85, 'Q', '.')), "is not a torch storage reference");
    }

    @Test
    void unhashableDictKeysAreRefused() {
        assertProblem(bytes('}', ']', 'K', 1, 's', '.'), "a dict key is a list");
    }

    private static Object load(byte[] pickle) {
        return new RestrictedUnpickler(FILE, pickle).load();
    }

    private static void assertRefused(byte[] pickle, String global) {
        CheckpointException e = assertThrows(CheckpointException.class, () -> load(pickle));
        assertTrue(e.getMessage().startsWith(FILE + ": refusing to load: the pickle references " + global),
                e.getMessage());
        assertTrue(e.getMessage().contains("the file tries to call code outside a state_dict, and nothing was "
                + "executed"), e.getMessage());
    }

    private static void assertProblem(byte[] pickle, String problem) {
        CheckpointException e = assertThrows(CheckpointException.class, () -> load(pickle));
        assertTrue(e.getMessage().startsWith(FILE + ": "), e.getMessage());
        assertTrue(e.getMessage().contains(problem), e.getMessage());
    }

    private static byte[] bytes(int... values) {
        byte[] out = new byte[values.length];
        for (int i = 0; i < values.length; i++) {
            out[i] = (byte) values[i];
        }
        return out;
    }

    private static byte[] ascii(String s) {
        return s.getBytes(StandardCharsets.US_ASCII);
    }

    private static byte[] str(String s) {
        return concat(bytes(0x8c, s.length()), ascii(s));
    }

    private static byte[] concat(byte[]... parts) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (byte[] p : parts) {
            out.writeBytes(p);
        }
        return out.toByteArray();
    }
}
