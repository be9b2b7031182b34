package dev.finetune.metrics;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.finetune.ErrorKind;
import dev.finetune.FinetuneException;
import java.io.BufferedReader;
import java.io.BufferedWriter;
import java.io.Closeable;
import java.io.IOException;
import java.lang.reflect.Array;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.RecordComponent;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Appends one row per epoch to {@code metrics.csv} and {@code metrics.jsonl} in a run directory.
 *
 * <p><b>Columns.</b> A row is a map from name to value (or a record, whose components become snake_case names).
 * Scalar values (numbers, text, booleans, null) are CSV columns; maps, collections, arrays and records (per-class
 * accuracy, the confusion matrix) go to the JSONL line only, next to the scalars. The CSV columns are fixed by the
 * first row ever written to the file: later rows, including rows appended after a resume, must have the same set.
 *
 * <p><b>Values.</b> In CSV a NaN is written {@code nan} and infinities {@code inf}/{@code -inf}, as Python writes
 * them, and null is an empty field; pandas reads all of them as floats. JSON has no NaN, so non-finite numbers are
 * {@code null} in {@code metrics.jsonl}.
 *
 * <p><b>Durability.</b> Every row is written with one write per file and forced to disk before {@link #append}
 * returns, so a crash loses at most the row being written. A half-written last line left by such a crash is cut off
 * when the log is next opened, and ignored by {@link #read}.
 *
 * <p>Methods are synchronized, but the log assumes it is the only writer of its files.
 */
public final class MetricsLog implements Closeable {
    /** The CSV file name inside the run directory. */
    public static final String CSV_FILE = "metrics.csv";
    /** The JSON-lines file name inside the run directory. */
    public static final String JSONL_FILE = "metrics.jsonl";

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final JsonNodeFactory NODES = JsonNodeFactory.instance;

    private final Path csvPath;
    private final Path jsonlPath;
    private final FileChannel csvOut;
    private final FileChannel jsonlOut;
    private List<String> columns;
    private final boolean columnsFromFile;
    private boolean wroteRow;
    private boolean closed;

    private MetricsLog(Path dir) throws IOException {
        Files.createDirectories(dir);
        this.csvPath = dir.resolve(CSV_FILE);
        this.jsonlPath = dir.resolve(JSONL_FILE);
        dropPartialLastLine(csvPath);
        dropPartialLastLine(jsonlPath);
        this.columns = readHeader(csvPath);
        this.columnsFromFile = columns != null;
        boolean created = !Files.exists(csvPath) || !Files.exists(jsonlPath);
        FileChannel csv = openAppend(csvPath);
        try {
            this.jsonlOut = openAppend(jsonlPath);
        } catch (IOException e) {
            csv.close();
            throw e;
        }
        this.csvOut = csv;
        if (created) {
            syncDirectory(dir);
        }
    }

    /**
     * Opens the log in {@code dir}, creating the directory and files if needed and appending to files that exist.
     *
     * @throws FinetuneException {@link ErrorKind#OUTPUT} if the files cannot be opened
     */
    public static MetricsLog open(Path dir) {
        try {
            return new MetricsLog(dir);
        } catch (IOException e) {
            throw new FinetuneException(ErrorKind.OUTPUT, "cannot open the metrics log in " + dir + ": " + e, e);
        }
    }

    /**
     * Opens the log to continue a run from the checkpoint of {@code lastEpoch}: rows of later epochs, logged before
     * a crash but after that checkpoint, are removed first, because those epochs will run again and be logged again.
     *
     * @param lastEpoch the last epoch whose results are kept (0 keeps no rows)
     * @throws FinetuneException {@link ErrorKind#OUTPUT} if the files cannot be read or rewritten, or have no
     *     {@code epoch} column
     */
    public static MetricsLog resume(Path dir, long lastEpoch) {
        try {
            Path csv = dir.resolve(CSV_FILE);
            Path jsonl = dir.resolve(JSONL_FILE);
            dropPartialLastLine(csv);
            dropPartialLastLine(jsonl);
            keepEpochsUpTo(csv, lastEpoch, true);
            keepEpochsUpTo(jsonl, lastEpoch, false);
            return new MetricsLog(dir);
        } catch (IOException e) {
            throw new FinetuneException(ErrorKind.OUTPUT, "cannot resume the metrics log in " + dir + ": " + e, e);
        }
    }

    /**
     * Reads a {@code metrics.csv}. A half-written last line (no line break) is ignored.
     *
     * @throws FinetuneException {@link ErrorKind#OUTPUT} if the file is missing, unreadable or malformed
     */
    public static MetricsTable read(Path csv) {
        List<String> lines;
        try {
            lines = completeLines(csv);
        } catch (NoSuchFileException e) {
            throw new FinetuneException(ErrorKind.OUTPUT, csv + " does not exist; is this a run directory?", e);
        } catch (IOException e) {
            throw new FinetuneException(ErrorKind.OUTPUT, "cannot read " + csv + ": " + e, e);
        }
        if (lines.isEmpty()) {
            return new MetricsTable(csv, List.of(), List.of());
        }
        List<String> header = parseLine(csv, lines.get(0), 1);
        List<List<String>> rows = new ArrayList<>();
        for (int i = 1; i < lines.size(); i++) {
            if (lines.get(i).isEmpty()) {
                continue;
            }
            List<String> row = parseLine(csv, lines.get(i), i + 1);
            if (row.size() != header.size()) {
                throw new FinetuneException(ErrorKind.OUTPUT, csv + " line " + (i + 1) + ": " + row.size()
                        + " fields, the header has " + header.size());
            }
            rows.add(row);
        }
        return new MetricsTable(csv, header, rows);
    }

    /**
     * Appends a row.
     *
     * @param row column name → value, in the order the columns should have in a new file
     * @throws FinetuneException {@link ErrorKind#OUTPUT} if the file existed with other columns, or cannot be written
     * @throws IllegalArgumentException if the columns differ from the rows written before by this log
     */
    public synchronized void append(Map<String, ?> row) {
        Set<String> jsonOnly = new HashSet<>();
        for (Map.Entry<String, ?> e : row.entrySet()) {
            if (!isScalar(e.getValue())) {
                jsonOnly.add(e.getKey());
            }
        }
        write(new LinkedHashMap<>(row), jsonOnly);
    }

    /**
     * Appends a record, such as an {@link EpochRow}: each component {@code fooBar} becomes column {@code foo_bar}.
     * Whether a component is a CSV column is decided by its declared type, not its value, so a matrix that is null
     * in one epoch does not turn into a column.
     *
     * @throws FinetuneException {@link ErrorKind#OUTPUT} if the file existed with other columns, or cannot be written
     * @throws IllegalArgumentException if the columns differ from the rows written before by this log
     */
    public synchronized void append(Record row) {
        LinkedHashMap<String, Object> values = new LinkedHashMap<>();
        Set<String> jsonOnly = new HashSet<>();
        for (RecordComponent component : row.getClass().getRecordComponents()) {
            String name = snakeCase(component.getName());
            values.put(name, readComponent(row, component));
            if (!isScalarType(component.getType())) {
                jsonOnly.add(name);
            }
        }
        write(values, jsonOnly);
    }

    /** The CSV columns, or an empty list before the first row of a new file. */
    public synchronized List<String> columns() {
        return columns == null ? List.of() : List.copyOf(columns);
    }

    /** Where the CSV is written. */
    public Path csvPath() {
        return csvPath;
    }

    /** Where the JSON lines are written. */
    public Path jsonlPath() {
        return jsonlPath;
    }

    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        // Closing is all that is needed: every row was already forced.
        IOException failure = null;
        for (FileChannel channel : List.of(csvOut, jsonlOut)) {
            try {
                channel.close();
            } catch (IOException e) {
                if (failure == null) {
                    failure = e;
                } else {
                    failure.addSuppressed(e);
                }
            }
        }
        if (failure != null) {
            throw new FinetuneException(
                    ErrorKind.OUTPUT, "cannot close the metrics log " + csvPath + ": " + failure, failure);
        }
    }

    private void write(LinkedHashMap<String, Object> values, Set<String> jsonOnly) {
        if (closed) {
            throw new IllegalStateException("the metrics log " + csvPath + " is closed");
        }
        List<String> rowColumns = new ArrayList<>();
        for (String name : values.keySet()) {
            if (!jsonOnly.contains(name)) {
                rowColumns.add(name);
            }
        }
        StringBuilder csvText = new StringBuilder();
        if (columns == null) {
            checkNames(rowColumns);
            csvText.append(Csv.line(rowColumns.stream().map(Csv::quote).toList()));
        } else {
            checkSameColumns(rowColumns);
        }
        List<String> layout = columns == null ? rowColumns : columns;
        List<String> fields = new ArrayList<>(layout.size());
        for (String column : layout) {
            fields.add(Csv.format(values.get(column)));
        }
        csvText.append(Csv.line(fields));
        String jsonText;
        try {
            jsonText = JSON.writeValueAsString(toJson(values)) + "\n";
        } catch (IOException e) {
            throw new IllegalArgumentException("metrics row cannot be written as JSON: " + e.getMessage(), e);
        }
        try {
            // JSONL first: if the crash comes between the two, the CSV (what plots and resume read) lacks the row
            // rather than the richer file.
            writeFully(jsonlOut, jsonText);
            writeFully(csvOut, csvText.toString());
        } catch (IOException e) {
            throw new FinetuneException(ErrorKind.OUTPUT, "cannot append to the metrics log " + csvPath + ": " + e, e);
        }
        columns = layout;
        wroteRow = true;
    }

    private void checkSameColumns(List<String> rowColumns) {
        if (new HashSet<>(rowColumns).equals(new HashSet<>(columns)) && rowColumns.size() == columns.size()) {
            return;
        }
        Set<String> missing = new LinkedHashSet<>(columns);
        missing.removeAll(rowColumns);
        Set<String> extra = new LinkedHashSet<>(rowColumns);
        extra.removeAll(columns);
        String detail = "missing " + missing + ", extra " + extra;
        if (columnsFromFile && !wroteRow) {
            throw new FinetuneException(ErrorKind.OUTPUT, csvPath + " has columns " + columns
                    + ", but this run logs " + rowColumns + " (" + detail + "); it was written by a different "
                    + "configuration or version: resume with the same settings or start a new run directory");
        }
        throw new IllegalArgumentException("metrics row columns changed: " + detail + "; the log has " + columns);
    }

    private static void checkNames(List<String> names) {
        if (names.isEmpty()) {
            throw new IllegalArgumentException("a metrics row needs at least one scalar column");
        }
        for (String name : names) {
            if (name == null || name.isBlank()) {
                throw new IllegalArgumentException("metrics column names cannot be empty: " + names);
            }
            Csv.quote(name);
        }
    }

    private static void writeFully(FileChannel channel, String text) throws IOException {
        ByteBuffer buffer = ByteBuffer.wrap(text.getBytes(StandardCharsets.UTF_8));
        while (buffer.hasRemaining()) {
            channel.write(buffer);
        }
        // force(false) is fdatasync, which still persists the file length an append changed; the rest of the
        // metadata (times) does not matter for reading the row back.
        channel.force(false);
    }

    private static FileChannel openAppend(Path file) throws IOException {
        return FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE, StandardOpenOption.APPEND);
    }

    private static List<String> readHeader(Path csv) throws IOException {
        if (!Files.exists(csv)) {
            return null;
        }
        try (BufferedReader in = Files.newBufferedReader(csv, StandardCharsets.UTF_8)) {
            String first = in.readLine();
            if (first == null || first.isEmpty()) {
                return null;
            }
            return parseLine(csv, first, 1);
        }
    }

    private static List<String> parseLine(Path file, String line, int lineNumber) {
        try {
            return Csv.parse(line);
        } catch (IllegalArgumentException e) {
            throw new FinetuneException(ErrorKind.OUTPUT, file + " line " + lineNumber + ": " + e.getMessage(), e);
        }
    }

    /** The file's lines up to its last line break; a trailing fragment without one is a crashed write. */
    private static List<String> completeLines(Path file) throws IOException {
        String text = Files.readString(file, StandardCharsets.UTF_8);
        int end = text.lastIndexOf('\n');
        if (end < 0) {
            return List.of();
        }
        return List.of(text.substring(0, end).split("\r?\n", -1));
    }

    /** Truncates a trailing fragment without a line break, so the next append starts on a line of its own. */
    private static void dropPartialLastLine(Path file) throws IOException {
        if (!Files.exists(file)) {
            return;
        }
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            long size = channel.size();
            long keep = size;
            ByteBuffer one = ByteBuffer.allocate(8192);
            // Scan backwards in blocks; a fragment is at most one row, but rows with a large matrix can be long.
            outer:
            while (keep > 0) {
                long start = Math.max(0, keep - one.capacity());
                one.clear().limit((int) (keep - start));
                channel.read(one, start);
                for (int i = one.position() - 1; i >= 0; i--) {
                    if (one.get(i) == '\n') {
                        keep = start + i + 1;
                        break outer;
                    }
                }
                keep = start;
            }
            if (keep < size) {
                channel.truncate(keep);
                channel.force(false);
            }
        }
    }

    /** Rewrites {@code file} without the rows of epochs after {@code lastEpoch}, atomically, if there are any. */
    private static void keepEpochsUpTo(Path file, long lastEpoch, boolean csv) throws IOException {
        if (!Files.exists(file)) {
            return;
        }
        List<String> kept = new ArrayList<>();
        boolean dropped = false;
        int epochColumn = -1;
        int lineNumber = 0;
        try (BufferedReader in = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
            for (String line = in.readLine(); line != null; line = in.readLine()) {
                lineNumber++;
                if (line.isEmpty()) {
                    continue;
                }
                if (csv && lineNumber == 1) {
                    epochColumn = parseLine(file, line, 1).indexOf("epoch");
                    if (epochColumn < 0) {
                        throw new FinetuneException(ErrorKind.OUTPUT, file + " has no 'epoch' column, so the rows "
                                + "after the resumed checkpoint cannot be found; start a new run directory");
                    }
                    kept.add(line);
                    continue;
                }
                double epoch = csv ? csvEpoch(file, line, lineNumber, epochColumn) : jsonEpoch(file, line, lineNumber);
                if (epoch <= lastEpoch) {
                    kept.add(line);
                } else {
                    dropped = true;
                }
            }
        }
        if (!dropped) {
            return;
        }
        Path temp = file.resolveSibling("." + file.getFileName() + ".resume.tmp");
        try {
            try (FileChannel channel = FileChannel.open(temp, StandardOpenOption.CREATE,
                            StandardOpenOption.TRUNCATE_EXISTING, StandardOpenOption.WRITE);
                    BufferedWriter out = new BufferedWriter(java.nio.channels.Channels.newWriter(
                            channel, StandardCharsets.UTF_8))) {
                for (String line : kept) {
                    out.write(line);
                    out.write('\n');
                }
                out.flush();
                channel.force(true);
            }
            try {
                Files.move(temp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(temp, file, StandardCopyOption.REPLACE_EXISTING);
            }
        } finally {
            Files.deleteIfExists(temp);
        }
        syncDirectory(file.toAbsolutePath().getParent());
    }

    private static double csvEpoch(Path file, String line, int lineNumber, int epochColumn) {
        List<String> fields = parseLine(file, line, lineNumber);
        try {
            return Csv.parseDouble(fields.get(epochColumn));
        } catch (RuntimeException e) {
            throw new FinetuneException(ErrorKind.OUTPUT, file + " line " + lineNumber + ": no readable epoch", e);
        }
    }

    private static double jsonEpoch(Path file, String line, int lineNumber) {
        try {
            JsonNode epoch = JSON.readTree(line).get("epoch");
            if (epoch == null || !epoch.isNumber()) {
                throw new IllegalArgumentException("no numeric 'epoch' field");
            }
            return epoch.asDouble();
        } catch (IOException | IllegalArgumentException e) {
            throw new FinetuneException(
                    ErrorKind.OUTPUT, file + " line " + lineNumber + ": no readable epoch (" + e.getMessage() + ")", e);
        }
    }

    private static void syncDirectory(Path dir) {
        try (FileChannel channel = FileChannel.open(dir, StandardOpenOption.READ)) {
            channel.force(true);
        } catch (IOException | UnsupportedOperationException e) {
            // Not every platform can open a directory; the file contents are already forced.
        }
    }

    private static boolean isScalar(Object value) {
        return value == null || isScalarType(value.getClass());
    }

    private static boolean isScalarType(Class<?> type) {
        return !(type.isArray() || Map.class.isAssignableFrom(type) || Collection.class.isAssignableFrom(type)
                || Record.class.isAssignableFrom(type) || JsonNode.class.isAssignableFrom(type));
    }

    private static Object readComponent(Record row, RecordComponent component) {
        Method accessor = component.getAccessor();
        try {
            // A record declared inside a test or a private class is still a plain data carrier.
            accessor.setAccessible(true);
            return accessor.invoke(row);
        } catch (IllegalAccessException | InvocationTargetException | RuntimeException e) {
            throw new IllegalArgumentException("cannot read " + row.getClass().getSimpleName() + "."
                    + component.getName() + ": " + e, e);
        }
    }

    /** {@code imagesPerSecond} → {@code images_per_second}, {@code valTop1} → {@code val_top1}. */
    static String snakeCase(String camel) {
        StringBuilder out = new StringBuilder(camel.length() + 4);
        for (int i = 0; i < camel.length(); i++) {
            char ch = camel.charAt(i);
            // Digits stay attached (valTop1 → val_top1, not val_top_1), as the column names are usually written.
            if (i > 0 && Character.isUpperCase(ch) && out.charAt(out.length() - 1) != '_') {
                out.append('_');
            }
            out.append(Character.toLowerCase(ch));
        }
        return out.toString();
    }

    private static ObjectNode toJson(Map<String, ?> values) {
        ObjectNode node = NODES.objectNode();
        for (Map.Entry<String, ?> e : values.entrySet()) {
            node.set(e.getKey(), toJsonValue(e.getValue()));
        }
        return node;
    }

    private static JsonNode toJsonValue(Object value) {
        if (value == null) {
            return NODES.nullNode();
        }
        if (value instanceof Double || value instanceof Float) {
            double d = ((Number) value).doubleValue();
            if (!Double.isFinite(d)) {
                return NODES.nullNode();
            }
            return value instanceof Float f ? NODES.numberNode(f) : NODES.numberNode(d);
        }
        if (value instanceof Integer || value instanceof Short || value instanceof Byte) {
            return NODES.numberNode(((Number) value).intValue());
        }
        if (value instanceof Long l) {
            return NODES.numberNode(l);
        }
        if (value instanceof BigInteger b) {
            return NODES.numberNode(b);
        }
        if (value instanceof BigDecimal b) {
            return NODES.numberNode(b);
        }
        if (value instanceof Boolean b) {
            return NODES.booleanNode(b);
        }
        if (value instanceof JsonNode n) {
            return n;
        }
        if (value instanceof Map<?, ?> map) {
            ObjectNode node = NODES.objectNode();
            map.forEach((k, v) -> node.set(String.valueOf(k), toJsonValue(v)));
            return node;
        }
        if (value instanceof Collection<?> list) {
            ArrayNode node = NODES.arrayNode();
            list.forEach(v -> node.add(toJsonValue(v)));
            return node;
        }
        if (value.getClass().isArray()) {
            ArrayNode node = NODES.arrayNode();
            for (int i = 0, n = Array.getLength(value); i < n; i++) {
                node.add(toJsonValue(Array.get(value, i)));
            }
            return node;
        }
        if (value instanceof Record r) {
            LinkedHashMap<String, Object> fields = new LinkedHashMap<>();
            for (RecordComponent component : r.getClass().getRecordComponents()) {
                fields.put(snakeCase(component.getName()), readComponent(r, component));
            }
            return toJson(fields);
        }
        return NODES.textNode(String.valueOf(value));
    }
}
