package dev.finetune.report;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.finetune.ErrorKind;
import dev.finetune.FinetuneException;
import dev.finetune.metrics.EpochRow;
import dev.finetune.metrics.MetricsLog;
import java.awt.Dimension;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class PlotsTest {
    private static final List<String> CIFAR = List.of(
            "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck");

    @TempDir
    Path dir;

    /** A plausible 12-epoch run; epoch 4 was not validated, so its validation cells are NaN. */
    private static Path writeRun(Path runDir) {
        Random random = new Random(7);
        try (MetricsLog log = MetricsLog.open(runDir)) {
            for (int e = 1; e <= 12; e++) {
                boolean validated = e != 4;
                double top1 = 0.35 + 0.55 * (1 - Math.exp(-e / 3.0)) + random.nextDouble() * 0.02;
                log.append(new EpochRow(e, 2.2 * Math.exp(-e / 3.0) + 0.15,
                        validated ? 2.0 * Math.exp(-e / 3.5) + 0.3 : Double.NaN,
                        validated ? top1 : Double.NaN,
                        validated ? Math.min(1.0, top1 + 0.3 * (1 - top1) + 0.05) : Double.NaN,
                        validated ? top1 - 0.02 : Double.NaN,
                        0.01, 12.5, 250.0, 5130, Map.of(), null, Map.of(), null, Map.of(), Map.of()));
            }
        }
        return runDir.resolve(MetricsLog.CSV_FILE);
    }

    private static long[][] confusion(int n, long seed) {
        Random random = new Random(seed);
        long[][] cm = new long[n][n];
        for (int t = 0; t < n; t++) {
            for (int p = 0; p < n; p++) {
                cm[t][p] = t == p ? 80 + random.nextInt(900) : random.nextInt(4) == 0 ? random.nextInt(60) : 0;
            }
        }
        return cm;
    }

    private static List<String> names(int n) {
        List<String> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            out.add(i % 7 == 0 ? "a_rather_long_class_name_number_" + i : "class_" + i);
        }
        return out;
    }

    private static BufferedImage readPng(Path png) throws IOException {
        assertTrue(Files.isRegularFile(png), png + " exists");
        byte[] magic = new byte[8];
        System.arraycopy(Files.readAllBytes(png), 0, magic, 0, 8);
        assertEquals("\u0089PNG\r\n\u001a\n", new String(magic, java.nio.charset.StandardCharsets.ISO_8859_1));
        BufferedImage image = ImageIO.read(png.toFile());
        assertNotNull(image, "ImageIO can decode " + png);
        return image;
    }

    private static int distinctColours(BufferedImage image) {
        Set<Integer> colours = new HashSet<>();
        for (int y = 0; y < image.getHeight(); y += 2) {
            for (int x = 0; x < image.getWidth(); x += 2) {
                colours.add(image.getRGB(x, y));
            }
        }
        return colours.size();
    }

    private static boolean hasPixel(BufferedImage image, java.util.function.IntPredicate rgb) {
        for (int y = 0; y < image.getHeight(); y++) {
            for (int x = 0; x < image.getWidth(); x++) {
                if (rgb.test(image.getRGB(x, y))) {
                    return true;
                }
            }
        }
        return false;
    }

    private static void assertNoTemporaryFiles(Path directory) throws IOException {
        try (var files = Files.list(directory)) {
            assertTrue(files.noneMatch(f -> f.getFileName().toString().endsWith(".tmp")), "no temporary files left");
        }
    }

    @Test
    void curvesAreOneTwoPanelPng() throws IOException {
        Path png = dir.resolve("curves.png");
        Plots.curves(writeRun(dir.resolve("run")), png);
        BufferedImage image = readPng(png);
        assertEquals(Plots.CURVES_WIDTH, image.getWidth());
        assertEquals(Plots.CURVES_HEIGHT, image.getHeight());
        assertTrue(distinctColours(image) > 20);
        // The train series is blue (#1f77b4) in the left panel, validation orange (#ff7f0e) in both panels.
        int half = Plots.CURVES_WIDTH / 2;
        assertTrue(hasPixel(image.getSubimage(0, 0, half, image.getHeight()), rgb -> (rgb & 0xffffff) == 0x1f77b4));
        assertTrue(hasPixel(image.getSubimage(half, 0, half, image.getHeight()),
                rgb -> (rgb & 0xffffff) == 0xff7f0e));
        assertNoTemporaryFiles(dir);
    }

    @Test
    void curvesCopeWithOnlyTrainingLossAndASingleEpoch() throws IOException {
        Path runDir = dir.resolve("run");
        try (MetricsLog log = MetricsLog.open(runDir)) {
            Map<String, Object> row = new LinkedHashMap<>();
            row.put("epoch", 1);
            row.put("train_loss", 1.25);
            log.append(row);
        }
        Path png = dir.resolve("curves.png");
        Plots.curves(runDir.resolve(MetricsLog.CSV_FILE), png);
        assertEquals(Plots.CURVES_WIDTH, readPng(png).getWidth());
    }

    @Test
    void curvesOfAMissingCsvIsAnOutputError() {
        FinetuneException e = assertThrows(FinetuneException.class,
                () -> Plots.curves(dir.resolve("metrics.csv"), dir.resolve("curves.png")));
        assertEquals(ErrorKind.OUTPUT, e.kind());
        assertTrue(Files.notExists(dir.resolve("curves.png")));
    }

    @Test
    void confusionMatrixForTenClassesIsSizedAndNotBlank() throws IOException {
        Path png = dir.resolve("confusion.png");
        Plots.confusionMatrix(confusion(10, 3), CIFAR, png);
        BufferedImage image = readPng(png);
        Dimension expected = Plots.confusionMatrixSize(CIFAR);
        assertEquals(expected.width, image.getWidth());
        assertEquals(expected.height, image.getHeight());
        assertTrue(image.getWidth() >= 720 && image.getWidth() <= 1200, "width " + image.getWidth());
        assertTrue(distinctColours(image) > 50, "has text and a colour scale, found " + distinctColours(image));
        // Diagonal cells dominate their rows, so the darkest blue of the scale must appear.
        assertTrue(hasPixel(image, rgb -> (rgb & 0xffffff) != 0 && ((rgb >> 16) & 0xff) < 0x30
                && (rgb & 0xff) > 0x60));
        assertNoTemporaryFiles(dir);
    }

    @Test
    void confusionMatrixRendersEdgeCases() throws IOException {
        // One class, a class without samples (grey row), an all-zero matrix and 100 classes without cell text.
        Plots.confusionMatrix(new long[][] {{5}}, List.of("only"), dir.resolve("one.png"));
        Plots.confusionMatrix(new long[][] {{3, 1, 0}, {0, 0, 0}, {0, 2, 7}}, List.of("a", "b", "c"),
                dir.resolve("empty-row.png"));
        Plots.confusionMatrix(new long[2][2], List.of("a", "b"), dir.resolve("zeros.png"));
        Plots.confusionMatrix(confusion(100, 5), names(100), dir.resolve("hundred.png"));
        for (String name : List.of("one.png", "empty-row.png", "zeros.png", "hundred.png")) {
            BufferedImage image = readPng(dir.resolve(name));
            assertTrue(distinctColours(image) > 10, name + " is not blank");
        }
        BufferedImage hundred = readPng(dir.resolve("hundred.png"));
        assertEquals(Plots.confusionMatrixSize(names(100)), new Dimension(hundred.getWidth(), hundred.getHeight()));
        assertTrue(hundred.getWidth() <= 1400, "100 classes stay a reasonable size, found " + hundred.getWidth());
    }

    @Test
    void rewritingReplacesTheOldPlot() throws IOException {
        Path png = dir.resolve("confusion.png");
        Files.writeString(png, "not a png");
        Plots.confusionMatrix(confusion(3, 1), List.of("a", "b", "c"), png);
        readPng(png);
        assertNoTemporaryFiles(dir);
    }

    @Test
    void badMatricesAreRejected() {
        Path png = dir.resolve("x.png");
        assertEquals("got 2 class names for a 3x3 confusion matrix", assertThrows(IllegalArgumentException.class,
                () -> Plots.confusionMatrix(new long[3][3], List.of("a", "b"), png)).getMessage());
        assertThrows(IllegalArgumentException.class,
                () -> Plots.confusionMatrix(new long[][] {{1, 2}, {3}}, List.of("a", "b"), png));
        assertThrows(IllegalArgumentException.class,
                () -> Plots.confusionMatrix(new long[][] {{1, -2}, {3, 4}}, List.of("a", "b"), png));
        assertThrows(IllegalArgumentException.class, () -> Plots.confusionMatrix(new long[0][0], List.of(), png));
        assertTrue(Files.notExists(png));
    }

    @Test
    void anUnwritableTargetIsAnOutputError() throws IOException {
        Path notADirectory = Files.writeString(dir.resolve("file"), "x");
        FinetuneException e = assertThrows(FinetuneException.class,
                () -> Plots.confusionMatrix(new long[][] {{1}}, List.of("a"), notADirectory.resolve("cm.png")));
        assertEquals(ErrorKind.OUTPUT, e.kind());
        assertTrue(e.getMessage().startsWith("cannot write " + notADirectory.resolve("cm.png")), e.getMessage());
    }

    /**
     * Renders one example of each plot for a person to look at: run with {@code -Dplots.preview=/tmp/plots-preview}.
     * Layout problems (clipped labels, unreadable counts) are not something an assertion can judge.
     */
    @Test
    void previewForHumans() throws IOException {
        String target = System.getProperty("plots.preview");
        Assumptions.assumeTrue(target != null && !target.isBlank(), "set -Dplots.preview=DIR to render previews");
        Path out = Paths.get(target);
        Files.createDirectories(out);
        Plots.curves(writeRun(dir.resolve("run")), out.resolve("curves.png"));
        long[][] cifar = confusion(10, 3);
        cifar[3] = new long[10];
        Plots.confusionMatrix(cifar, CIFAR, out.resolve("confusion-10.png"));
        Plots.confusionMatrix(confusion(30, 4), names(30), out.resolve("confusion-30.png"));
        Plots.confusionMatrix(confusion(100, 5), names(100), out.resolve("confusion-100.png"));
    }
}
