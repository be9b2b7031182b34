package dev.finetune.metrics;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.finetune.ErrorKind;
import dev.finetune.FinetuneException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class MetricsLogTest {
    private static final String HEADER =
            "epoch,train_loss,val_loss,val_top1,val_top5,val_macro_f1,lr,epoch_seconds,images_per_second,trainable_params\n";

    @TempDir
    Path dir;

    private static EpochRow row(int epoch) {
        Map<String, Double> perClass = new LinkedHashMap<>();
        perClass.put("cat", 0.75);
        perClass.put("dog", Double.NaN);
        long[][] confusion = {{3, 1}, {0, 0}};
        var scores = ClassScores.of(confusion);
        Map<String, ClassScores> byName = new LinkedHashMap<>();
        byName.put("cat", scores.get(0));
        byName.put("dog", scores.get(1));
        return new EpochRow(epoch, 0.5, 0.25, 0.75, 1.0, ClassScores.Averages.of(scores).macroF1(), 0.001, 12.5, 80.0, 5130, perClass, confusion, byName,
                ClassScores.Averages.of(scores), Map.of("base", 0.001), Map.of());
    }

    private static Map<String, Object> mapRow(int epoch, double loss) {
        Map<String, Object> row = new LinkedHashMap<>();
        row.put("epoch", epoch);
        row.put("train_loss", loss);
        row.put("note", "a, \"quoted\" note");
        return row;
    }

    /** Golden files: the exact bytes other tools (pandas, jq, plots of an older run) depend on. */
    @Test
    void writesTheDocumentedFormat() throws IOException {
        try (MetricsLog log = MetricsLog.open(dir)) {
            log.append(row(1));
        }
        assertEquals(HEADER + "1,0.5,0.25,0.75,1.0,0.42857142857142855,0.001,12.5,80.0,5130\n",
                Files.readString(dir.resolve("metrics.csv")));
        // Per-class scores as scikit-learn's precision_recall_fscore_support(zero_division=0) gives them for this
        // confusion matrix: cat p=3/3, r=3/4; dog never true, predicted once: p=0, r=0.
        assertEquals("{\"epoch\":1,\"train_loss\":0.5,\"val_loss\":0.25,\"val_top1\":0.75,\"val_top5\":1.0,"
                + "\"val_macro_f1\":0.42857142857142855,"
                + "\"lr\":0.001,\"epoch_seconds\":12.5,\"images_per_second\":80.0,\"trainable_params\":5130,"
                + "\"per_class_accuracy\":{\"cat\":0.75,\"dog\":null},\"confusion_matrix\":[[3,1],[0,0]],"
                + "\"per_class\":{\"cat\":{\"precision\":1.0,\"recall\":0.75,\"f1\":0.8571428571428571,\"support\":4},"
                + "\"dog\":{\"precision\":0.0,\"recall\":0.0,\"f1\":0.0,\"support\":0}},"
                + "\"averages\":{\"macro_precision\":0.5,\"macro_recall\":0.375,\"macro_f1\":0.42857142857142855,"
                + "\"weighted_precision\":1.0,\"weighted_recall\":0.75,\"weighted_f1\":0.8571428571428571},"
                + "\"lr_by_group\":{\"base\":0.001},\"ema\":{}}\n",
                Files.readString(dir.resolve("metrics.jsonl")));
    }

    @Test
    void csvAndJsonlRoundTrip() throws IOException {
        ClassificationMetrics m = new ClassificationMetrics(3);
        m.add(new float[] {9, 0, 0, 0, 9, 0, 9, 0, 0}, new int[] {0, 1, 1}, 3, 3);
        m.addLoss(1.5, 3);
        EpochMetrics val = m.result();
        try (MetricsLog log = MetricsLog.open(dir)) {
            log.append(EpochRow.of(1, 0.8, val, List.of("a", "b", "c"), 1e-4, 3.0, 100.0, 512));
            log.append(EpochRow.of(2, 0.7, null, List.of("a", "b", "c"), 1e-4, 3.0, 100.0, 512));
        }
        MetricsTable table = MetricsLog.read(dir.resolve("metrics.csv"));
        assertEquals(List.of("epoch", "train_loss", "val_loss", "val_top1", "val_top5", "val_macro_f1", "lr", "epoch_seconds",
                "images_per_second", "trainable_params"), table.columns());
        assertEquals(2, table.size());
        assertArrayEquals(new double[] {1, 2}, table.doubles("epoch"));
        assertEquals(0.5, table.doubles("val_loss")[0]);
        assertEquals(2.0 / 3, table.doubles("val_top1")[0]);
        assertEquals(1e-4, table.doubles("lr")[0]);
        assertTrue(Double.isNaN(table.doubles("val_top1")[1]));
        assertEquals("nan", table.value(1, "val_top1"));
        assertEquals("512", table.row(0).get("trainable_params"));

        List<String> lines = Files.readAllLines(dir.resolve("metrics.jsonl"));
        assertEquals(2, lines.size());
        JsonNode first = new ObjectMapper().readTree(lines.get(0));
        assertEquals(2.0 / 3, first.get("val_top1").asDouble());
        assertEquals(1.0, first.get("per_class_accuracy").get("a").asDouble());
        assertEquals(0.5, first.get("per_class_accuracy").get("b").asDouble());
        assertTrue(first.get("per_class_accuracy").get("c").isNull());
        assertEquals(1, first.get("confusion_matrix").get(1).get(0).asLong());
        JsonNode second = new ObjectMapper().readTree(lines.get(1));
        assertTrue(second.get("val_loss").isNull());
        assertTrue(second.get("confusion_matrix").isNull());
        assertEquals(0, second.get("per_class_accuracy").size());
    }

    @Test
    void mapRowsKeepTheirOrderQuoteTextAndSendStructuresToJsonlOnly() throws IOException {
        try (MetricsLog log = MetricsLog.open(dir)) {
            Map<String, Object> row = mapRow(1, 2.5);
            row.put("lr_groups", List.of(0.1, 0.01));
            log.append(row);
            assertEquals(List.of("epoch", "train_loss", "note"), log.columns());
            Map<String, Object> reordered = new LinkedHashMap<>();
            reordered.put("note", "plain");
            reordered.put("train_loss", Double.POSITIVE_INFINITY);
            reordered.put("epoch", 2);
            reordered.put("lr_groups", List.of());
            log.append(reordered);
        }
        assertEquals("epoch,train_loss,note\n1,2.5,\"a, \"\"quoted\"\" note\"\n2,inf,plain\n",
                Files.readString(dir.resolve("metrics.csv")));
        MetricsTable table = MetricsLog.read(dir.resolve("metrics.csv"));
        assertEquals("a, \"quoted\" note", table.value(0, "note"));
        assertEquals(Double.POSITIVE_INFINITY, table.doubles("train_loss")[1]);
        assertTrue(Files.readAllLines(dir.resolve("metrics.jsonl")).get(0).endsWith("\"lr_groups\":[0.1,0.01]}"));
    }

    @Test
    void reopeningAppendsWithoutASecondHeader() throws IOException {
        try (MetricsLog log = MetricsLog.open(dir)) {
            log.append(row(1));
            log.append(row(2));
        }
        try (MetricsLog log = MetricsLog.open(dir)) {
            assertEquals(10, log.columns().size());
            log.append(row(3));
        }
        String csv = Files.readString(dir.resolve("metrics.csv"));
        assertEquals(1, csv.split("epoch,", -1).length - 1);
        assertArrayEquals(new double[] {1, 2, 3}, MetricsLog.read(dir.resolve("metrics.csv")).doubles("epoch"));
        assertEquals(3, Files.readAllLines(dir.resolve("metrics.jsonl")).size());
    }

    @Test
    void refusesToAppendRowsWithOtherColumnsToAnExistingFile() throws IOException {
        try (MetricsLog log = MetricsLog.open(dir)) {
            log.append(row(1));
        }
        String before = Files.readString(dir.resolve("metrics.csv"));
        try (MetricsLog log = MetricsLog.open(dir)) {
            FinetuneException e = assertThrows(FinetuneException.class, () -> log.append(mapRow(2, 1.0)));
            assertEquals(ErrorKind.OUTPUT, e.kind());
            assertTrue(e.getMessage().contains("missing [val_loss, val_top1, val_top5, val_macro_f1, lr, epoch_seconds, "
                    + "images_per_second, trainable_params], extra [note]"), e.getMessage());
            assertTrue(e.getMessage().contains("start a new run directory"), e.getMessage());
        }
        assertEquals(before, Files.readString(dir.resolve("metrics.csv")));
        assertEquals(1, Files.readAllLines(dir.resolve("metrics.jsonl")).size());
    }

    @Test
    void columnsChangingWithinARunIsAProgrammingError() {
        try (MetricsLog log = MetricsLog.open(dir)) {
            log.append(mapRow(1, 1.0));
            Map<String, Object> fewer = mapRow(2, 1.0);
            fewer.remove("note");
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> log.append(fewer));
            assertEquals("metrics row columns changed: missing [note], extra []; the log has [epoch, train_loss, note]",
                    e.getMessage());
        }
    }

    @Test
    void aHalfWrittenLastLineIsIgnoredByReadAndCutOffOnOpen() throws IOException {
        try (MetricsLog log = MetricsLog.open(dir)) {
            log.append(mapRow(1, 1.0));
        }
        Path csv = dir.resolve("metrics.csv");
        Files.writeString(csv, "2,0.9,\"unfinish", StandardOpenOption.APPEND);
        Files.writeString(dir.resolve("metrics.jsonl"), "{\"epoch\":2,", StandardOpenOption.APPEND);
        assertEquals(1, MetricsLog.read(csv).size());
        try (MetricsLog log = MetricsLog.open(dir)) {
            log.append(mapRow(2, 0.8));
        }
        assertArrayEquals(new double[] {1.0, 0.8}, MetricsLog.read(csv).doubles("train_loss"));
        List<String> json = Files.readAllLines(dir.resolve("metrics.jsonl"));
        assertEquals(2, json.size());
        assertTrue(json.get(1).startsWith("{\"epoch\":2,\"train_loss\":0.8"), json.get(1));
    }

    @Test
    void aCrashDuringTheFirstHeaderLeavesANewFile() throws IOException {
        Files.writeString(dir.resolve("metrics.csv"), "epoch,train_lo");
        try (MetricsLog log = MetricsLog.open(dir)) {
            assertEquals(List.of(), log.columns());
            log.append(row(1));
        }
        assertTrue(Files.readString(dir.resolve("metrics.csv")).startsWith(HEADER));
    }

    @Test
    void resumeDropsRowsOfEpochsAfterTheCheckpoint() throws IOException {
        try (MetricsLog log = MetricsLog.open(dir)) {
            for (int epoch = 1; epoch <= 4; epoch++) {
                log.append(row(epoch));
            }
        }
        try (MetricsLog log = MetricsLog.resume(dir, 2)) {
            log.append(row(3));
        }
        assertArrayEquals(new double[] {1, 2, 3}, MetricsLog.read(dir.resolve("metrics.csv")).doubles("epoch"));
        List<String> json = Files.readAllLines(dir.resolve("metrics.jsonl"));
        assertEquals(3, json.size());
        assertTrue(json.get(2).startsWith("{\"epoch\":3,"));
        try (var files = Files.list(dir)) {
            assertEquals(2, files.count(), "no temporary files are left behind");
        }
    }

    @Test
    void resumeWithoutAnyLogStartsOne() {
        try (MetricsLog log = MetricsLog.resume(dir.resolve("new"), 5)) {
            log.append(row(6));
        }
        assertEquals(1, MetricsLog.read(dir.resolve("new").resolve("metrics.csv")).size());
    }

    @Test
    void resumeNeedsAnEpochColumn() throws IOException {
        Files.writeString(dir.resolve("metrics.csv"), "step,loss\n1,0.5\n", StandardCharsets.UTF_8);
        FinetuneException e = assertThrows(FinetuneException.class, () -> MetricsLog.resume(dir, 1));
        assertEquals(ErrorKind.OUTPUT, e.kind());
        assertTrue(e.getMessage().contains("has no 'epoch' column"), e.getMessage());
    }

    @Test
    void readingAMissingOrDamagedFileSaysWhich() throws IOException {
        Path missing = dir.resolve("metrics.csv");
        FinetuneException e = assertThrows(FinetuneException.class, () -> MetricsLog.read(missing));
        assertEquals(ErrorKind.OUTPUT, e.kind());
        assertEquals(missing + " does not exist; is this a run directory?", e.getMessage());

        Files.writeString(missing, "epoch,loss\n1,0.5\n2\n");
        e = assertThrows(FinetuneException.class, () -> MetricsLog.read(missing));
        assertEquals(missing + " line 3: 1 fields, the header has 2", e.getMessage());

        Files.writeString(missing, "epoch,loss\n1,abc\n");
        MetricsTable table = MetricsLog.read(missing);
        e = assertThrows(FinetuneException.class, () -> table.doubles("loss"));
        assertEquals(missing + " line 2, column loss: expected a number, found 'abc'", e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> table.doubles("val_loss"));
    }

    @Test
    void anEmptyFileReadsAsAnEmptyTable() throws IOException {
        Files.writeString(dir.resolve("metrics.csv"), "");
        MetricsTable table = MetricsLog.read(dir.resolve("metrics.csv"));
        assertEquals(0, table.size());
        assertEquals(List.of(), table.columns());
    }

    @Test
    void appendingAfterCloseFails() {
        MetricsLog log = MetricsLog.open(dir);
        log.close();
        log.close();
        assertThrows(IllegalStateException.class, () -> log.append(row(1)));
    }

    @Test
    void recordComponentNamesBecomeSnakeCase() {
        assertEquals("images_per_second", MetricsLog.snakeCase("imagesPerSecond"));
        assertEquals("val_top1", MetricsLog.snakeCase("valTop1"));
        assertEquals("epoch", MetricsLog.snakeCase("epoch"));
    }
}
