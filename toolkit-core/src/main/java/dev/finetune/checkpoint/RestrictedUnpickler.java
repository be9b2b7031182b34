package dev.finetune.checkpoint;

import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Reads the pickle of a {@code torch.save} state_dict into plain data, calling nothing.
 *
 * <p>Why by hand: pickle is a small stack machine whose GLOBAL and REDUCE opcodes import and call arbitrary Python
 * functions, and no JVM pickle library offers a mode that refuses them (they either emulate the calls or hand back
 * opaque objects after trusting the stream). This one knows the handful of callables a state_dict needs and models
 * each as a data constructor; any other global stops the read at the opcode that names it, before anything could
 * use it. There is no Python here to execute anything anyway; the allowlist exists so that a file meant to run code
 * is reported as such instead of being half-loaded.
 *
 * <p>Every size comes from an untrusted file, so lengths are checked against the bytes that remain, the stack and the
 * memo are bounded, and tuples nest only so deep (their hash codes recurse).
 */
final class RestrictedUnpickler {
    /** Pushes and memo writes allowed: ~4 million is about 100,000 tensors, far beyond any real state_dict. */
    static final int MAX_OBJECTS = 4_000_000;
    static final int MAX_TUPLE_DEPTH = 100;
    /**
     * Characters plus tuple elements a dict key may have. Parameter names are far shorter; the bound keeps hashing and
     * comparing keys cheap, since tuples hash element by element and a pickle can reuse one tuple twice in the next
     * (3 bytes per level, 2^depth elements to visit).
     */
    static final int MAX_KEY_SIZE = 1024;


    /** Python's None. */
    enum None {
        NONE
    }

    /** A Python tuple: immutable, hashable, usable as a dict key. */
    record Tuple(List<Object> items, int depth) {
        static Tuple of(List<Object> items) {
            int depth = 1;
            for (Object o : items) {
                if (o instanceof Tuple t) {
                    depth = Math.max(depth, t.depth + 1);
                }
            }
            return new Tuple(List.copyOf(items), depth);
        }

        int size() {
            return items.size();
        }

        Object get(int i) {
            return items.get(i);
        }
    }

    /** A Python list (or set); identity semantics, because a list may contain itself. */
    static final class PyList {
        final List<Object> items = new ArrayList<>();
    }

    /**
     * A Python dict or OrderedDict, in insertion order; identity semantics like {@link PyList}.
     *
     * <p>Why not a map keyed by the Python values themselves: a crafted file can give 80,000 tuple keys one Java
     * {@code hashCode}, and a {@code HashMap} bucket of keys that are not {@link Comparable} is a list, so inserting
     * them takes quadratic time (142 s measured). Keys are stored as {@link Key}s instead: comparable, so a colliding
     * bucket becomes a balanced tree (logarithmic); equal exactly when Python's keys are equal ({@code 1 == 1.0 ==
     * True}; {@code 1 != '1'}).
     */
    static final class PyDict {
        private final LinkedHashMap<Key, Map.Entry<Object, Object>> items = new LinkedHashMap<>();

        void put(Object key, Object value) {
            put(Key.of(key), key, value);
        }

        void put(Key k, Object key, Object value) {
            items.put(k, Map.entry(key, value == null ? None.NONE : value));
        }

        Object get(Object key) {
            Map.Entry<Object, Object> e = items.get(Key.of(key));
            return e == null ? null : e.getValue();
        }

        boolean isEmpty() {
            return items.isEmpty();
        }

        int size() {
            return items.size();
        }

        /** (original key, value) pairs in insertion order; the first key of equal keys, as Python keeps it. */
        java.util.Collection<Map.Entry<Object, Object>> entries() {
            return items.values();
        }

        java.util.List<Object> keys() {
            return items.values().stream().map(Map.Entry::getKey).toList();
        }

        java.util.List<Object> values() {
            return items.values().stream().map(Map.Entry::getValue).toList();
        }
    }

    /**
     * A dict key by Python equality: a type tag (numbers share one: {@code 1}, {@code 1.0} and {@code True} are one key
     * in Python) and a canonical text. Comparable, so that hash collisions cost a tree lookup, not a list scan.
     */
    record Key(char type, String text) implements Comparable<Key> {
        static Key of(Object o) {
            StringBuilder b = new StringBuilder();
            char type = encode(o, b);
            return new Key(type, b.toString());
        }

        private static char encode(Object o, StringBuilder b) {
            if (o instanceof String s) {
                b.append(s);
                return 's';
            }
            if (o instanceof Boolean v) {
                b.append(v ? 1 : 0);
                return 'n';
            }
            if (o instanceof Long || o instanceof BigInteger) {
                b.append(o);
                return 'n';
            }
            if (o instanceof Double d) {
                if (d == Math.rint(d) && !Double.isInfinite(d) && Math.abs(d) < 0x1p62) {
                    b.append((long) (double) d);
                } else {
                    b.append(Double.isNaN(d) ? "nan" : Double.toString(d));
                }
                return 'n';
            }
            if (o instanceof Tuple t) {
                b.append('(');
                for (Object item : t.items()) {
                    StringBuilder inner = new StringBuilder();
                    char c = encode(item, inner);
                    // Length-prefixed, so that no string inside a tuple can fake the tuple's structure.
                    b.append(c).append(inner.length()).append(':').append(inner);
                }
                b.append(')');
                return 't';
            }
            if (o == None.NONE) {
                return '0';
            }
            if (o instanceof Global g) {
                b.append(g.qualifiedName());
                return 'g';
            }
            throw new IllegalArgumentException("unhashable " + o);
        }

        @Override
        public int compareTo(Key o) {
            int c = Character.compare(type, o.type);
            return c != 0 ? c : text.compareTo(o.text);
        }
    }

    /** What an allowlisted global stands for. */
    enum Role {
        ORDERED_DICT, REBUILD_TENSOR_V2, REBUILD_PARAMETER, REBUILD_PARAMETER_WITH_STATE, STORAGE_TYPE, DTYPE
    }

    /** An allowlisted global; {@code dtype} is set for storage types and dtype objects. */
    record Global(String qualifiedName, Role role, Dtype dtype) {
    }

    /** A storage: the persistent id {@code ('storage', torch.FloatStorage, '0', 'cpu', numel)}. */
    record StorageRef(String key, Dtype dtype, long numel, String location) {
    }

    /** What {@code torch._utils._rebuild_tensor_v2} would build: a strided view of a storage. */
    record TensorRef(StorageRef storage, long offset, long[] shape, long[] stride) {
    }

    private static final Map<String, Global> ALLOWED = new HashMap<>();

    static {
        allow("collections.OrderedDict", Role.ORDERED_DICT, null);
        allow("torch._utils._rebuild_tensor_v2", Role.REBUILD_TENSOR_V2, null);
        allow("torch._utils._rebuild_parameter", Role.REBUILD_PARAMETER, null);
        allow("torch._utils._rebuild_parameter_with_state", Role.REBUILD_PARAMETER_WITH_STATE, null);
        Object[][] storages = {
            {"Float", Dtype.F32}, {"Half", Dtype.F16}, {"BFloat16", Dtype.BF16}, {"Double", Dtype.F64},
            {"Long", Dtype.I64}, {"Int", Dtype.I32}, {"Short", Dtype.I16}, {"Char", Dtype.I8}, {"Byte", Dtype.U8},
            {"Bool", Dtype.BOOL},
        };
        for (Object[] s : storages) {
            // torch.cuda.* storage types appear in files saved from a GPU by PyTorch 1.6 - 1.10.
            allow("torch." + s[0] + "Storage", Role.STORAGE_TYPE, (Dtype) s[1]);
            allow("torch.cuda." + s[0] + "Storage", Role.STORAGE_TYPE, (Dtype) s[1]);
        }
        allow("torch.UntypedStorage", Role.STORAGE_TYPE, Dtype.U8);
        allow("torch.storage.UntypedStorage", Role.STORAGE_TYPE, Dtype.U8);
        Object[][] dtypes = {
            {"float32", Dtype.F32}, {"float", Dtype.F32}, {"float16", Dtype.F16}, {"half", Dtype.F16},
            {"bfloat16", Dtype.BF16}, {"float64", Dtype.F64}, {"double", Dtype.F64}, {"int64", Dtype.I64},
            {"long", Dtype.I64}, {"int32", Dtype.I32}, {"int", Dtype.I32}, {"int16", Dtype.I16},
            {"short", Dtype.I16}, {"int8", Dtype.I8}, {"uint8", Dtype.U8}, {"bool", Dtype.BOOL},
        };
        for (Object[] d : dtypes) {
            allow("torch." + d[0], Role.DTYPE, (Dtype) d[1]);
        }
    }

    private static void allow(String name, Role role, Dtype dtype) {
        ALLOWED.put(name, new Global(name, role, dtype));
    }

    private final Path file;
    private final byte[] data;
    private int pos;
    private int opcodeAt;
    private ArrayList<Object> stack = new ArrayList<>();
    private final ArrayList<ArrayList<Object>> marks = new ArrayList<>();
    private final HashMap<Long, Object> memo = new HashMap<>();
    private final java.util.IdentityHashMap<Object, Key> tupleKeys = new java.util.IdentityHashMap<>();
    private final Map<String, StorageRef> storages = new LinkedHashMap<>();
    private int objects;

    /**
     * @param file named in error messages
     * @param data the whole pickle ({@code data.pkl})
     */
    RestrictedUnpickler(Path file, byte[] data) {
        this.file = file;
        this.data = data;
    }

    /** Storages by key, in the order the pickle first mentions them. */
    Map<String, StorageRef> storages() {
        return storages;
    }

    /** Runs the pickle up to STOP and returns the object it built. */
    Object load() {
        while (true) {
            if (pos >= data.length) {
                throw fail("the pickle ends without a STOP opcode (truncated data.pkl)");
            }
            opcodeAt = pos;
            int op = data[pos++] & 0xFF;
            switch (op) {
                case 0x80 -> { // PROTO
                    int protocol = u8();
                    if (protocol > 5) {
                        throw fail("unknown pickle protocol " + protocol);
                    }
                }
                case 0x95 -> take(8); // FRAME: framing is only a hint for buffered readers
                case '.' -> { // STOP
                    Object result = pop();
                    if (!marks.isEmpty()) {
                        throw fail("STOP inside an unclosed MARK");
                    }
                    return result;
                }
                case '(' -> { // MARK
                    if (++objects > MAX_OBJECTS) {
                        throw fail("the pickle opens more than " + MAX_OBJECTS + " MARKs");
                    }
                    marks.add(stack);
                    stack = new ArrayList<>();
                }
                case '0' -> pop(); // POP
                case '1' -> popMark(); // POP_MARK
                case '2' -> push(peek()); // DUP
                case 'N' -> push(None.NONE);
                case 0x88 -> push(Boolean.TRUE);
                case 0x89 -> push(Boolean.FALSE);
                case 'J' -> push((long) i32()); // BININT
                case 'K' -> push((long) u8()); // BININT1
                case 'M' -> push((long) u16()); // BININT2
                case 0x8a -> push(longFromBytes(take(u8()))); // LONG1
                case 0x8b -> push(longFromBytes(take(length(i32())))); // LONG4
                case 'I' -> push(textInt(line())); // INT (protocol 0; "01"/"00" are True/False)
                case 'L' -> push(textLong(line())); // LONG (protocol 0)
                case 'G' -> push(ByteBuffer.wrap(take(8)).order(ByteOrder.BIG_ENDIAN).getDouble()); // BINFLOAT
                case 'F' -> push(textFloat(line())); // FLOAT (protocol 0)
                case 'X' -> push(utf8(take(length(u32())))); // BINUNICODE
                case 0x8c -> push(utf8(take(u8()))); // SHORT_BINUNICODE
                case 0x8d -> push(utf8(take(length(u64())))); // BINUNICODE8
                case 'V' -> push(line()); // UNICODE (protocol 0, raw-unicode-escape; fine for ASCII names)
                case 'U' -> push(latin1(take(u8()))); // SHORT_BINSTRING: Python 2 str, read as latin-1
                case 'T' -> push(latin1(take(length(i32())))); // BINSTRING
                case 'S' -> push(textString(line())); // STRING (protocol 0)
                case 'C' -> push(take(u8())); // SHORT_BINBYTES
                case 'B' -> push(take(length(u32()))); // BINBYTES
                case 0x8e -> push(take(length(u64()))); // BINBYTES8
                case 0x96 -> push(take(length(u64()))); // BYTEARRAY8
                case ')' -> push(Tuple.of(List.of())); // EMPTY_TUPLE
                case 't' -> push(tuple(popMark())); // TUPLE
                case 0x85 -> push(tuple(List.of(pop()))); // TUPLE1
                case 0x86 -> { // TUPLE2
                    Object b = pop();
                    Object a = pop();
                    push(tuple(List.of(a, b)));
                }
                case 0x87 -> { // TUPLE3
                    Object c = pop();
                    Object b = pop();
                    Object a = pop();
                    push(tuple(List.of(a, b, c)));
                }
                case ']', 0x8f -> push(new PyList()); // EMPTY_LIST, EMPTY_SET
                case 'l' -> push(listOf(popMark())); // LIST
                case 0x91 -> push(listOf(popMark())); // FROZENSET
                case 'a' -> { // APPEND
                    Object item = pop();
                    list(peek(), "APPEND").items.add(item);
                }
                case 'e', 0x90 -> { // APPENDS, ADDITEMS
                    List<Object> items = popMark();
                    list(peek(), "APPENDS").items.addAll(items);
                }
                case '}' -> push(new PyDict()); // EMPTY_DICT
                case 'd' -> { // DICT
                    List<Object> items = popMark();
                    PyDict dict = new PyDict();
                    putAll(dict, items);
                    push(dict);
                }
                case 's' -> { // SETITEM
                    Object value = pop();
                    Object key = pop();
                    put(dict(peek(), "SETITEM"), key, value);
                }
                case 'u' -> { // SETITEMS
                    List<Object> items = popMark();
                    putAll(dict(peek(), "SETITEMS"), items);
                }
                case 'p' -> memoPut(textLong(line())); // PUT
                case 'q' -> memoPut(u8()); // BINPUT
                case 'r' -> memoPut(u32()); // LONG_BINPUT
                case 0x94 -> memoPut(memo.size()); // MEMOIZE
                case 'g' -> memoGet(textLong(line())); // GET
                case 'h' -> memoGet(u8()); // BINGET
                case 'j' -> memoGet(u32()); // LONG_BINGET
                case 'c' -> { // GLOBAL
                    String module = line();
                    String name = line();
                    push(resolve(module, name));
                }
                case 0x93 -> { // STACK_GLOBAL
                    Object name = pop();
                    Object module = pop();
                    if (!(module instanceof String m) || !(name instanceof String n)) {
                        throw fail("STACK_GLOBAL needs two strings");
                    }
                    push(resolve(m, n));
                }
                case 'i' -> { // INST: like GLOBAL followed by a call
                    String module = line();
                    String name = line();
                    Global global = resolve(module, name);
                    push(call(global, tuple(popMark())));
                }
                case 'o' -> { // OBJ
                    List<Object> items = popMark();
                    if (items.isEmpty()) {
                        throw fail("OBJ without a class");
                    }
                    push(call(items.get(0), tuple(items.subList(1, items.size()))));
                }
                case 'R' -> { // REDUCE
                    Object args = pop();
                    Object callable = pop();
                    push(call(callable, args));
                }
                case 0x81 -> { // NEWOBJ
                    Object args = pop();
                    Object cls = pop();
                    push(newObject(cls, args));
                }
                case 0x92 -> { // NEWOBJ_EX
                    Object kwargs = pop();
                    Object args = pop();
                    Object cls = pop();
                    if (!(kwargs instanceof PyDict d) || !d.isEmpty()) {
                        throw fail("NEWOBJ_EX with keyword arguments is not used by state_dicts");
                    }
                    push(newObject(cls, args));
                }
                case 'b' -> build(pop(), peek()); // BUILD
                case 'Q' -> push(persistentLoad(pop())); // BINPERSID
                case 'P' -> throw fail("text persistent ids (PERSID) are not used by torch.save");
                case 0x82, 0x83, 0x84 -> throw refuse("code through the copyreg extension registry"); // EXT1/2/4
                case 0x97, 0x98 -> throw fail("out-of-band pickle buffers are not used by torch.save");
                default -> throw fail(String.format("unknown pickle opcode 0x%02x", op));
            }
        }
    }

    // ---- the allowlist ----

    private Global resolve(String module, String name) {
        String qualified = module + "." + name;
        Global global = ALLOWED.get(qualified);
        if (global != null) {
            return global;
        }
        if (module.equals("torch") && name.startsWith("Complex") && name.endsWith("Storage")
                || module.startsWith("torch") && name.startsWith("Q") && name.endsWith("Storage")) {
            throw fail("tensors stored as " + qualified + " (complex or quantized) are not supported");
        }
        throw refuse(qualified);
    }

    private CheckpointException refuse(String what) {
        return new CheckpointException(file, "refusing to load: the pickle references " + what + " (data.pkl byte "
                + opcodeAt + "), which is not part of a PyTorch state_dict: the file tries to call code outside a "
                + "state_dict, and nothing was executed. If you trust where it came from, re-save the weights in "
                + "Python with torch.save(model.state_dict(), f), or export them as safetensors");
    }

    private Object call(Object callable, Object args) {
        if (!(callable instanceof Global global)) {
            throw fail("REDUCE on " + typeName(callable) + ", which is not a callable a state_dict uses");
        }
        Tuple a = args instanceof Tuple t ? t : null;
        if (a == null) {
            throw fail("arguments of " + global.qualifiedName() + " are a " + typeName(args) + ", not a tuple");
        }
        return switch (global.role()) {
            case ORDERED_DICT -> orderedDict(a);
            case REBUILD_TENSOR_V2 -> rebuildTensor(a);
            case REBUILD_PARAMETER, REBUILD_PARAMETER_WITH_STATE -> {
                // The parameter is its data tensor; requires_grad, hooks and state do not matter for weights.
                if (a.size() < 1 || !(a.get(0) instanceof TensorRef data)) {
                    throw fail(global.qualifiedName() + " without a tensor as first argument");
                }
                yield data;
            }
            case STORAGE_TYPE, DTYPE -> throw fail(
                    "the pickle calls " + global.qualifiedName() + ", which a state_dict never calls");
        };
    }

    private Object orderedDict(Tuple args) {
        PyDict dict = new PyDict();
        if (args.size() == 1 && args.get(0) instanceof PyList pairs) {
            // OrderedDict([(k, v), ...])
            for (Object pair : pairs.items) {
                if (!(pair instanceof Tuple p) || p.size() != 2) {
                    throw fail("OrderedDict built from something other than (key, value) pairs");
                }
                put(dict, p.get(0), p.get(1));
            }
        } else if (args.size() != 0) {
            throw fail("OrderedDict called with " + args.size() + " arguments");
        }
        return dict;
    }

    private Object newObject(Object cls, Object args) {
        if (cls instanceof Global g && g.role() == Role.ORDERED_DICT && args instanceof Tuple) {
            return new PyDict();
        }
        throw fail("NEWOBJ of " + describeCallable(cls) + ", which a state_dict never creates");
    }

    private void build(Object state, Object target) {
        // OrderedDict.__reduce__ carries the instance __dict__ (state_dict's _metadata with module versions) as
        // BUILD state; it says nothing about the weights, so it is dropped.
        if (!(target instanceof PyDict)) {
            throw fail("BUILD on " + typeName(target) + "; only dicts are built in a state_dict");
        }
        if (!(state instanceof PyDict) && state != None.NONE && !(state instanceof Tuple)) {
            throw fail("BUILD state is a " + typeName(state));
        }
    }

    private TensorRef rebuildTensor(Tuple args) {
        // _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
        if (args.size() < 4 || args.size() > 7) {
            throw fail("_rebuild_tensor_v2 called with " + args.size() + " arguments");
        }
        if (!(args.get(0) instanceof StorageRef storage)) {
            throw fail("_rebuild_tensor_v2 on a " + typeName(args.get(0)) + " instead of a storage");
        }
        long offset = nonNegative(args.get(1), "storage offset");
        long[] shape = longs(args.get(2), "size");
        long[] stride = longs(args.get(3), "stride");
        if (shape.length != stride.length) {
            throw fail("tensor size has " + shape.length + " dimensions but stride has " + stride.length);
        }
        return new TensorRef(storage, offset, shape, stride);
    }

    private StorageRef persistentLoad(Object pid) {
        // torch.save's persistent id for a storage: ('storage', storage_type, key, location, numel)
        if (!(pid instanceof Tuple t) || t.size() != 5 || !"storage".equals(t.get(0))) {
            throw fail("persistent id " + describeSmall(pid) + " is not a torch storage reference");
        }
        if (!(t.get(1) instanceof Global g) || g.role() != Role.STORAGE_TYPE) {
            throw fail("storage type " + describeSmall(t.get(1)) + " is not a torch storage class");
        }
        if (!(t.get(2) instanceof String key) || key.isEmpty() || key.contains("/") || key.contains("..")) {
            throw fail("storage key " + describeSmall(t.get(2)) + " is not a plain name");
        }
        String location = t.get(3) instanceof String s ? s : String.valueOf(t.get(3));
        long numel = nonNegative(t.get(4), "storage size");
        StorageRef known = storages.get(key);
        if (known != null) {
            if (known.dtype() != g.dtype() || known.numel() != numel) {
                throw fail("storage " + key + " is referenced both as " + known.numel() + " x " + known.dtype()
                        + " and as " + numel + " x " + g.dtype());
            }
            return known;
        }
        StorageRef ref = new StorageRef(key, g.dtype(), numel, location);
        storages.put(key, ref);
        return ref;
    }

    // ---- stack and memo ----

    private void push(Object o) {
        if (++objects > MAX_OBJECTS) {
            throw fail("the pickle builds more than " + MAX_OBJECTS + " objects; not a state_dict this reader accepts");
        }
        stack.add(o);
    }

    private Object pop() {
        if (stack.isEmpty()) {
            throw fail("the pickle pops from an empty stack (corrupt data.pkl)");
        }
        return stack.remove(stack.size() - 1);
    }

    private Object peek() {
        if (stack.isEmpty()) {
            throw fail("the pickle reads from an empty stack (corrupt data.pkl)");
        }
        return stack.get(stack.size() - 1);
    }

    private List<Object> popMark() {
        if (marks.isEmpty()) {
            throw fail("the pickle closes a MARK that was never opened (corrupt data.pkl)");
        }
        List<Object> items = stack;
        stack = marks.remove(marks.size() - 1);
        return items;
    }

    private void memoPut(long index) {
        if (index < 0) {
            throw fail("negative memo index");
        }
        if (++objects > MAX_OBJECTS) {
            throw fail("the pickle memoizes more than " + MAX_OBJECTS + " objects");
        }
        memo.put(index, peek());
    }

    private void memoGet(long index) {
        Object o = memo.get(index);
        if (o == null) {
            throw fail("the pickle refers to memo entry " + index + ", which was never stored (corrupt data.pkl)");
        }
        push(o);
    }

    private Tuple tuple(List<Object> items) {
        Tuple t = Tuple.of(items);
        if (t.depth() > MAX_TUPLE_DEPTH) {
            throw fail("tuples nested more than " + MAX_TUPLE_DEPTH + " deep");
        }
        return t;
    }

    private static PyList listOf(List<Object> items) {
        PyList list = new PyList();
        list.items.addAll(items);
        return list;
    }

    private PyList list(Object o, String op) {
        if (o instanceof PyList l) {
            return l;
        }
        throw fail(op + " on a " + typeName(o) + ", not a list");
    }

    private PyDict dict(Object o, String op) {
        if (o instanceof PyDict d) {
            return d;
        }
        throw fail(op + " on a " + typeName(o) + ", not a dict");
    }

    private void putAll(PyDict dict, List<Object> items) {
        if (items.size() % 2 != 0) {
            throw fail("a dict is given an odd number of keys and values");
        }
        for (int i = 0; i < items.size(); i += 2) {
            put(dict, items.get(i), items.get(i + 1));
        }
    }

    private void put(PyDict dict, Object key, Object value) {
        // Only immutable values are hashable in Python; the others would also make hashCode() recurse or lie here.
        if (!(key instanceof String || key instanceof Long || key instanceof BigInteger || key instanceof Double
                || key instanceof Boolean || key instanceof Tuple || key == None.NONE || key instanceof Global)) {
            throw fail("a dict key is a " + typeName(key) + ", which Python cannot hash");
        }
        if (keySize(key, MAX_KEY_SIZE) > MAX_KEY_SIZE) {
            throw fail("a dict key (" + typeName(key) + ") larger than " + MAX_KEY_SIZE + " characters or elements;"
                    + " a state_dict's keys are parameter names");
        }
        // A pickle can use one large tuple object as a key many times (memo): encode each tuple object once.
        Key k = key instanceof Tuple ? tupleKeys.computeIfAbsent(key, Key::of) : Key.of(key);
        dict.put(k, key, value);
    }

    /** The size of a key, counted only up to just past {@code limit} so that a shared-tuple bomb stays cheap. */
    private static long keySize(Object key, long limit) {
        if (key instanceof String s) {
            return Math.max(1, s.length());
        }
        if (key instanceof BigInteger b) {
            return 1 + b.bitLength() / 8;
        }
        if (key instanceof Tuple t) {
            long n = 1;
            for (Object item : t.items()) {
                n += keySize(item, limit - n);
                if (n > limit) {
                    break;
                }
            }
            return n;
        }
        return 1;
    }

    // ---- reading bytes ----

    private byte[] take(long n) {
        if (n < 0 || n > data.length - pos) {
            throw fail("a length of " + n + " bytes runs past the end of data.pkl (" + (data.length - pos)
                    + " bytes left; truncated or corrupt)");
        }
        byte[] out = new byte[(int) n];
        System.arraycopy(data, pos, out, 0, (int) n);
        pos += (int) n;
        return out;
    }

    /** Checks a claimed length before anything is allocated for it. */
    private long length(long n) {
        if (n < 0 || n > data.length - pos) {
            throw fail("a length of " + Long.toUnsignedString(n) + " bytes runs past the end of data.pkl ("
                    + (data.length - pos) + " bytes left; truncated or corrupt)");
        }
        return n;
    }

    private int u8() {
        return take(1)[0] & 0xFF;
    }

    private int u16() {
        byte[] b = take(2);
        return (b[0] & 0xFF) | (b[1] & 0xFF) << 8;
    }

    private int i32() {
        return ByteBuffer.wrap(take(4)).order(ByteOrder.LITTLE_ENDIAN).getInt();
    }

    private long u32() {
        return i32() & 0xFFFFFFFFL;
    }

    private long u64() {
        return ByteBuffer.wrap(take(8)).order(ByteOrder.LITTLE_ENDIAN).getLong(); // negative = too large
    }

    private String line() {
        for (int i = pos; i < data.length; i++) {
            if (data[i] == '\n') {
                String s = new String(data, pos, i - pos, StandardCharsets.UTF_8);
                pos = i + 1;
                return s;
            }
        }
        throw fail("a text field runs past the end of data.pkl (truncated)");
    }

    private static String utf8(byte[] b) {
        return new String(b, StandardCharsets.UTF_8);
    }

    private static String latin1(byte[] b) {
        return new String(b, StandardCharsets.ISO_8859_1);
    }

    /** Python's decode_long: little-endian two's complement of any length. */
    private Object longFromBytes(byte[] b) {
        if (b.length == 0) {
            return 0L;
        }
        byte[] bigEndian = new byte[b.length];
        for (int i = 0; i < b.length; i++) {
            bigEndian[i] = b[b.length - 1 - i];
        }
        BigInteger value = new BigInteger(bigEndian);
        return value.bitLength() < 64 ? (Object) value.longValue() : value;
    }

    private Object textInt(String s) {
        if (s.equals("01")) {
            return Boolean.TRUE;
        }
        if (s.equals("00")) {
            return Boolean.FALSE;
        }
        return textLong(s);
    }

    private long textLong(String s) {
        try {
            return Long.parseLong(s.endsWith("L") ? s.substring(0, s.length() - 1) : s);
        } catch (NumberFormatException e) {
            throw fail("bad integer " + describeSmall(s));
        }
    }

    private double textFloat(String s) {
        try {
            return Double.parseDouble(s);
        } catch (NumberFormatException e) {
            throw fail("bad float " + describeSmall(s));
        }
    }

    private String textString(String s) {
        if (s.length() >= 2 && (s.charAt(0) == '\'' || s.charAt(0) == '"') && s.charAt(s.length() - 1) == s.charAt(0)) {
            return s.substring(1, s.length() - 1);
        }
        throw fail("bad STRING literal");
    }

    // ---- argument checks and messages ----

    private long nonNegative(Object o, String what) {
        if (o instanceof Long l && l >= 0) {
            return l;
        }
        throw fail(what + " is " + describeSmall(o) + ", expected a non-negative integer below 2^63");
    }

    private long[] longs(Object o, String what) {
        if (!(o instanceof Tuple t)) {
            throw fail("tensor " + what + " is a " + typeName(o) + ", not a tuple");
        }
        long[] out = new long[t.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = nonNegative(t.get(i), "tensor " + what + "[" + i + "]");
        }
        return out;
    }

    private static String describeCallable(Object o) {
        return o instanceof Global g ? g.qualifiedName() : "a " + typeName(o);
    }

    /** A short description of an untrusted value that cannot recurse or produce a huge message. */
    static String describeSmall(Object o) {
        if (o instanceof String s) {
            return "'" + (s.length() > 60 ? s.substring(0, 60) + "..." : s) + "'";
        }
        if (o instanceof Long || o instanceof Double || o instanceof Boolean) {
            return String.valueOf(o);
        }
        if (o instanceof Global g) {
            return g.qualifiedName();
        }
        return "a " + typeName(o);
    }

    static String typeName(Object o) {
        if (o instanceof String) {
            return "str";
        }
        if (o instanceof Long || o instanceof BigInteger) {
            return "int";
        }
        if (o instanceof Double) {
            return "float";
        }
        if (o instanceof Boolean) {
            return "bool";
        }
        if (o instanceof byte[]) {
            return "bytes";
        }
        if (o == None.NONE) {
            return "None";
        }
        if (o instanceof Tuple) {
            return "tuple";
        }
        if (o instanceof PyList) {
            return "list";
        }
        if (o instanceof PyDict) {
            return "dict";
        }
        if (o instanceof TensorRef) {
            return "tensor";
        }
        if (o instanceof StorageRef) {
            return "storage";
        }
        if (o instanceof Global g) {
            return g.qualifiedName();
        }
        return o == null ? "null" : o.getClass().getSimpleName();
    }

    private CheckpointException fail(String problem) {
        return new CheckpointException(file, problem + " (data.pkl byte " + opcodeAt + ")");
    }
}
