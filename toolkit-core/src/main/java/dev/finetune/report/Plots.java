package dev.finetune.report;

import dev.finetune.ErrorKind;
import dev.finetune.FinetuneException;
import dev.finetune.metrics.MetricsLog;
import dev.finetune.metrics.MetricsTable;
import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Dimension;
import java.awt.Font;
import java.awt.FontMetrics;
import java.awt.Graphics2D;
import java.awt.Paint;
import java.awt.RenderingHints;
import java.awt.Stroke;
import java.awt.geom.Rectangle2D;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.text.NumberFormat;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.imageio.ImageIO;
import org.jfree.chart.JFreeChart;
import org.jfree.chart.annotations.XYTextAnnotation;
import org.jfree.chart.axis.AxisSpace;
import org.jfree.chart.axis.NumberAxis;
import org.jfree.chart.axis.NumberTickUnit;
import org.jfree.chart.axis.SymbolAxis;
import org.jfree.chart.plot.XYPlot;
import org.jfree.chart.renderer.PaintScale;
import org.jfree.chart.renderer.xy.XYBlockRenderer;
import org.jfree.chart.renderer.xy.XYLineAndShapeRenderer;
import org.jfree.chart.title.LegendTitle;
import org.jfree.chart.title.PaintScaleLegend;
import org.jfree.chart.title.TextTitle;
import org.jfree.chart.ui.RectangleEdge;
import org.jfree.chart.ui.RectangleInsets;
import org.jfree.chart.ui.TextAnchor;
import org.jfree.data.xy.DefaultXYZDataset;
import org.jfree.data.xy.XYSeries;
import org.jfree.data.xy.XYSeriesCollection;

/**
 * Draws the PNG charts of a run.
 *
 * <p>{@link #curves} puts loss and accuracy side by side in one {@value #CURVES_WIDTH}x{@value #CURVES_HEIGHT} image
 * ({@code curves.png} by convention): one file is easier to attach to a report or an issue than two, and the
 * reader compares the panels at a glance. {@link #confusionMatrix} draws a heatmap whose size grows with the number
 * of classes so cells stay square and readable.
 *
 * <p>Write failures throw {@link FinetuneException} of kind {@link ErrorKind#OUTPUT}; files are written to a
 * temporary name in the same directory and renamed, so an existing plot is replaced only by a complete one.
 */
public final class Plots {
    /** Width of the curves image in pixels: two panels of 600. */
    public static final int CURVES_WIDTH = 1200;
    /** Height of the curves image in pixels. */
    public static final int CURVES_HEIGHT = 500;
    /** Above this many classes the confusion matrix shows colour only: numbers would not fit in the cells. */
    public static final int MAX_CLASSES_WITH_COUNTS = 30;

    /** Above this many classes, zero cells are left blank (the white colour already says zero). */
    private static final int MAX_CLASSES_WITH_ZEROS = 15;

    static final String CONFUSION_TITLE = "Confusion matrix (rows: true, columns: predicted)";

    private static final String FONT = Font.SANS_SERIF;
    private static final Font TITLE_FONT = new Font(FONT, Font.BOLD, 18);
    private static final Font SUBTITLE_FONT = new Font(FONT, Font.PLAIN, 13);
    private static final Font AXIS_LABEL_FONT = new Font(FONT, Font.PLAIN, 14);
    private static final Font TICK_FONT = new Font(FONT, Font.PLAIN, 12);
    private static final Font LEGEND_FONT = new Font(FONT, Font.PLAIN, 13);

    // matplotlib's tab10 blue and orange: train and validation look the same as in most people's notebooks.
    private static final Color TRAIN_COLOR = new Color(0x1f77b4);
    private static final Color VAL_COLOR = new Color(0xff7f0e);
    private static final Color[] OTHER_COLORS = {new Color(0x2ca02c), new Color(0xd62728), new Color(0x9467bd),
            new Color(0x8c564b), new Color(0xe377c2), new Color(0x7f7f7f)};
    private static final Color GRID_COLOR = new Color(0xdddddd);
    private static final Pattern TOP_K = Pattern.compile("top(\\d+)");

    /** Longest class name shown in full on a confusion-matrix axis; longer names are shortened with an ellipsis. */
    private static final int MAX_LABEL_CHARS = 22;

    static {
        // Must happen before the first AWT class initialises its toolkit; an explicit choice by the user wins.
        if (System.getProperty("java.awt.headless") == null) {
            System.setProperty("java.awt.headless", "true");
        }
    }

    private Plots() {
    }

    /**
     * Draws the training curves of a {@code metrics.csv}.
     *
     * @see #curves(MetricsTable, Path)
     * @throws FinetuneException {@link ErrorKind#OUTPUT} if the CSV cannot be read or the PNG cannot be written
     */
    public static void curves(Path csv, Path outPng) {
        curves(MetricsLog.read(csv), outPng);
    }

    /**
     * Draws the training curves: on the left every column ending in {@code loss}, on the right every column naming
     * a top-k accuracy ({@code val_top1}, {@code val_top5}, ...) or ending in {@code accuracy}, against the
     * {@code epoch} column (or the row number if there is none). Training series are blue and validation series
     * orange; top-k series with k &gt; 1 are dashed. Empty and NaN cells leave gaps. The best value of
     * {@code val_loss} and of {@code val_top1} is given under each panel's title.
     *
     * @throws FinetuneException {@link ErrorKind#OUTPUT} if the PNG cannot be written
     */
    public static void curves(MetricsTable table, Path outPng) {
        double[] epochs = epochs(table);
        List<String> lossColumns = new ArrayList<>();
        List<String> accuracyColumns = new ArrayList<>();
        for (String column : table.columns()) {
            if (column.endsWith("loss")) {
                lossColumns.add(column);
            } else if (TOP_K.matcher(column).find() || column.endsWith("accuracy")) {
                accuracyColumns.add(column);
            }
        }
        JFreeChart loss = lineChart("Loss", "loss", table, epochs, lossColumns, false);
        JFreeChart accuracy = lineChart("Accuracy", "accuracy", table, epochs, accuracyColumns, true);
        if (table.hasColumn("val_loss")) {
            best(table, epochs, "val_loss", false).ifPresent(text -> loss.addSubtitle(subtitle(text)));
        }
        if (table.hasColumn("val_top1")) {
            best(table, epochs, "val_top1", true).ifPresent(text -> accuracy.addSubtitle(subtitle(text)));
        }
        writePng(render(CURVES_WIDTH, CURVES_HEIGHT, loss, accuracy), outPng);
    }

    /**
     * The learning-rate range test: the smoothed loss against the learning rate on a log axis, with a marker at
     * {@code suggested}.
     *
     * @throws FinetuneException {@link ErrorKind#OUTPUT} if the PNG cannot be written
     */
    public static void lrFind(List<Double> lrs, List<Double> smoothed, double suggested, Path outPng) {
        XYSeries series = new XYSeries("smoothed loss");
        for (int i = 0; i < lrs.size(); i++) {
            if (Double.isFinite(smoothed.get(i))) {
                series.add(lrs.get(i), smoothed.get(i));
            }
        }
        XYSeriesCollection data = new XYSeriesCollection(series);
        org.jfree.chart.axis.LogAxis x = new org.jfree.chart.axis.LogAxis("learning rate");
        x.setBase(10);
        x.setSmallestValue(1e-12);
        NumberAxis y = new NumberAxis("loss (smoothed)");
        y.setAutoRangeIncludesZero(false);
        XYLineAndShapeRenderer renderer = new XYLineAndShapeRenderer(true, false);
        renderer.setSeriesPaint(0, new Color(31, 119, 180));
        XYPlot plot = new XYPlot(data, x, y, renderer);
        plot.setBackgroundPaint(Color.WHITE);
        if (Double.isFinite(suggested)) {
            plot.addDomainMarker(new org.jfree.chart.plot.ValueMarker(suggested, new Color(255, 127, 14),
                    new BasicStroke(2f)));
        }
        JFreeChart chart = new JFreeChart("Learning-rate range test", JFreeChart.DEFAULT_TITLE_FONT, plot, false);
        chart.setBackgroundPaint(Color.WHITE);
        if (Double.isFinite(suggested)) {
            chart.addSubtitle(subtitle(String.format(java.util.Locale.ROOT, "suggested lr %.3g (steepest fall)",
                    suggested)));
        }
        writePng(render(900, 500, chart), outPng);
    }

    /**
     * The freeze-depth advisor's chart: per stage boundary, bars for the training step's time with everything up to it
     * frozen (on images, and on cached features) against the full fine-tune's as a dashed line, and the linear probe's
     * validation top-1 as a line on the right axis; the recommended boundary's label is marked.
     *
     * @throws FinetuneException {@link ErrorKind#OUTPUT} if the PNG cannot be written
     */
    public static void freezeAdvice(List<String> cuts, List<Double> probePercent, List<Double> stepMsImages,
            List<Double> stepMsCached, double fullStepMs, int recommended, Path outPng) {
        org.jfree.data.category.DefaultCategoryDataset bars = new org.jfree.data.category.DefaultCategoryDataset();
        org.jfree.data.category.DefaultCategoryDataset line = new org.jfree.data.category.DefaultCategoryDataset();
        for (int i = 0; i < cuts.size(); i++) {
            String label = "through " + cuts.get(i) + (i == recommended ? " *" : "");
            bars.addValue(stepMsImages.get(i), "step on images (ms)", label);
            bars.addValue(stepMsCached.get(i), "step on cached features (ms)", label);
            line.addValue(probePercent.get(i), "linear probe, val top-1 (%)", label);
        }
        org.jfree.chart.axis.CategoryAxis x = new org.jfree.chart.axis.CategoryAxis("frozen (* recommended)");
        NumberAxis ms = new NumberAxis("training step (ms)");
        org.jfree.chart.renderer.category.BarRenderer barRenderer = new org.jfree.chart.renderer.category.BarRenderer();
        barRenderer.setBarPainter(new org.jfree.chart.renderer.category.StandardBarPainter());
        barRenderer.setShadowVisible(false);
        barRenderer.setSeriesPaint(0, new Color(158, 202, 225));
        barRenderer.setSeriesPaint(1, new Color(49, 130, 189));
        org.jfree.chart.plot.CategoryPlot plot = new org.jfree.chart.plot.CategoryPlot(bars, x, ms, barRenderer);
        plot.setBackgroundPaint(Color.WHITE);
        plot.setRangeGridlinePaint(new Color(220, 220, 220));
        NumberAxis pct = new NumberAxis("linear probe, val top-1 (%)");
        pct.setAutoRangeIncludesZero(false);
        plot.setRangeAxis(1, pct);
        plot.setDataset(1, line);
        plot.mapDatasetToRangeAxis(1, 1);
        org.jfree.chart.renderer.category.LineAndShapeRenderer lineRenderer =
                new org.jfree.chart.renderer.category.LineAndShapeRenderer(true, true);
        lineRenderer.setSeriesPaint(0, new Color(255, 127, 14));
        lineRenderer.setSeriesStroke(0, new BasicStroke(2.5f));
        plot.setRenderer(1, lineRenderer);
        plot.setDatasetRenderingOrder(org.jfree.chart.plot.DatasetRenderingOrder.FORWARD);
        if (Double.isFinite(fullStepMs)) {
            plot.addRangeMarker(new org.jfree.chart.plot.ValueMarker(fullStepMs, new Color(120, 120, 120),
                    new BasicStroke(1.5f, BasicStroke.CAP_BUTT, BasicStroke.JOIN_MITER, 10f, new float[] {6f, 4f},
                            0f)));
        }
        JFreeChart chart = new JFreeChart("Where to stop freezing", JFreeChart.DEFAULT_TITLE_FONT, plot, true);
        chart.setBackgroundPaint(Color.WHITE);
        chart.addSubtitle(subtitle(String.format(java.util.Locale.ROOT,
                "dashed: full fine-tune step %.0f ms", fullStepMs)));
        writePng(render(1000, 520, chart), outPng);
    }

    /**
     * Draws a confusion matrix as a heatmap. Each cell is coloured by its share of the true class's samples (the row),
     * so a small class's errors are as visible as a large one's; the count is printed in the cell when there are at
     * most {@value #MAX_CLASSES_WITH_COUNTS} classes. Rows of classes without samples are grey.
     *
     * @param cm {@code cm[t][p]}: samples of true class {@code t} predicted as {@code p}; square, non-negative
     * @param classNames one name per class, in label order
     * @throws IllegalArgumentException if the matrix is empty, not square, negative, or the names do not match it
     * @throws FinetuneException {@link ErrorKind#OUTPUT} if the PNG cannot be written
     */
    public static void confusionMatrix(long[][] cm, List<String> classNames, Path outPng) {
        confusionMatrix(cm, classNames, outPng, CONFUSION_TITLE);
    }

    /** {@link #confusionMatrix(long[][], List, Path)} with its own title (which epoch it shows). */
    public static void confusionMatrix(long[][] cm, List<String> classNames, Path outPng, String titleText) {
        int n = checkMatrix(cm, classNames);
        ConfusionLayout layout = ConfusionLayout.of(classNames);

        double[] xs = new double[n * n];
        double[] ys = new double[n * n];
        double[] zs = new double[n * n];
        long total = 0;
        long correct = 0;
        long maxCount = 0;
        for (int t = 0; t < n; t++) {
            long rowTotal = 0;
            for (long count : cm[t]) {
                rowTotal += count;
                maxCount = Math.max(maxCount, count);
            }
            total += rowTotal;
            correct += cm[t][t];
            for (int p = 0; p < n; p++) {
                int i = t * n + p;
                xs[i] = p;
                ys[i] = t;
                zs[i] = rowTotal == 0 ? Double.NaN : (double) cm[t][p] / rowTotal;
            }
        }
        DefaultXYZDataset dataset = new DefaultXYZDataset();
        dataset.addSeries("confusion", new double[][] {xs, ys, zs});

        String[] labels = classNames.stream().map(Plots::shorten).toArray(String[]::new);
        SymbolAxis predicted = symbolAxis("Predicted class", labels, layout);
        predicted.setVerticalTickLabels(layout.rotateColumnLabels());
        SymbolAxis actual = symbolAxis("True class", labels, layout);
        // Row 0 at the top, as the matrix is printed.
        actual.setInverted(true);

        BluesScale scale = new BluesScale();
        XYBlockRenderer renderer = new XYBlockRenderer();
        renderer.setPaintScale(scale);
        renderer.setDefaultToolTipGenerator(null);
        XYPlot plot = new XYPlot(dataset, predicted, actual, renderer);
        plot.setBackgroundPaint(Color.WHITE);
        plot.setDomainGridlinesVisible(false);
        plot.setRangeGridlinesVisible(false);
        plot.setOutlinePaint(Color.GRAY);
        plot.setAxisOffset(RectangleInsets.ZERO_INSETS);
        // Extra width of a small matrix is split around the plot, not given to the cells or the title's padding.
        plot.setInsets(new RectangleInsets(4, 4, 4, 4 + layout.extraWidth() - layout.extraWidth() / 2));
        // Fixed axis space makes the data area, and so the cells, the size the layout computed: square cells.
        AxisSpace left = new AxisSpace();
        left.setLeft(layout.rowLabelSpace() + layout.extraWidth() / 2);
        plot.setFixedRangeAxisSpace(left);
        AxisSpace bottom = new AxisSpace();
        bottom.setBottom(layout.columnLabelSpace());
        plot.setFixedDomainAxisSpace(bottom);

        if (n <= MAX_CLASSES_WITH_COUNTS) {
            Font cellFont = layout.cellFont(maxCount);
            for (int t = 0; t < n; t++) {
                for (int p = 0; p < n; p++) {
                    if (cm[t][p] == 0 && n > MAX_CLASSES_WITH_ZEROS) {
                        // In a large matrix most cells are 0; printing them all buries the errors that matter.
                        continue;
                    }
                    XYTextAnnotation text = new XYTextAnnotation(Long.toString(cm[t][p]), p, t);
                    text.setFont(cellFont);
                    text.setTextAnchor(TextAnchor.CENTER);
                    text.setPaint(cm[t][p] == 0 ? new Color(0x9e9e9e)
                            : zs[t * n + p] > 0.5 ? Color.WHITE : Color.BLACK);
                    plot.addAnnotation(text, false);
                }
            }
        }

        JFreeChart chart = new JFreeChart(null, TITLE_FONT, plot, false);
        chart.setBackgroundPaint(Color.WHITE);
        chart.setPadding(new RectangleInsets(ConfusionLayout.PAD, ConfusionLayout.PAD, ConfusionLayout.PAD,
                ConfusionLayout.PAD));
        // Antialiased blocks leave faint seams between neighbouring cells; text still gets antialiasing.
        chart.setAntiAlias(false);
        chart.setTextAntiAlias(true);
        TextTitle title = new TextTitle(titleText, layout.titleFont());
        chart.setTitle(title);
        String summary = total == 0
                ? "no samples"
                : String.format(Locale.ROOT, "%d samples, accuracy %.2f%%; colour: share of the true class", total,
                        100.0 * correct / total);
        TextTitle sub = new TextTitle(summary, SUBTITLE_FONT);
        sub.setPaint(Color.DARK_GRAY);
        chart.addSubtitle(sub);

        NumberAxis legendAxis = new NumberAxis();
        legendAxis.setRange(0, 1);
        legendAxis.setNumberFormatOverride(NumberFormat.getPercentInstance(Locale.ROOT));
        legendAxis.setTickLabelFont(TICK_FONT);
        legendAxis.setTickUnit(new NumberTickUnit(0.25));
        PaintScaleLegend legend = new PaintScaleLegend(scale, legendAxis);
        legend.setPosition(RectangleEdge.RIGHT);
        legend.setStripWidth(14);
        legend.setAxisOffset(4);
        // Top and bottom margins line the colour strip up with the grid.
        legend.setMargin(new RectangleInsets(4, 12, layout.columnLabelSpace() + 4, 0));
        legend.setBackgroundPaint(Color.WHITE);
        legend.setStripOutlineVisible(true);
        chart.addSubtitle(legend);

        Dimension size = layout.imageSize();
        BufferedImage image = new BufferedImage(size.width, size.height, BufferedImage.TYPE_INT_RGB);
        Graphics2D g2 = image.createGraphics();
        try {
            chart.draw(g2, new Rectangle2D.Double(0, 0, size.width, size.height));
        } finally {
            g2.dispose();
        }
        writePng(image, outPng);
    }

    /** The pixel size {@link #confusionMatrix} uses for these class names; for tests and for report layout. */
    static Dimension confusionMatrixSize(List<String> classNames) {
        return ConfusionLayout.of(classNames).imageSize();
    }

    private static int checkMatrix(long[][] cm, List<String> classNames) {
        int n = cm.length;
        if (n == 0) {
            throw new IllegalArgumentException("the confusion matrix is empty");
        }
        if (classNames.size() != n) {
            throw new IllegalArgumentException(
                    "got " + classNames.size() + " class names for a " + n + "x" + n + " confusion matrix");
        }
        for (int t = 0; t < n; t++) {
            if (cm[t].length != n) {
                throw new IllegalArgumentException(
                        "confusion matrix row " + t + " has " + cm[t].length + " columns, expected " + n);
            }
            for (int p = 0; p < n; p++) {
                if (cm[t][p] < 0) {
                    throw new IllegalArgumentException(
                            "confusion matrix cell [" + t + "][" + p + "] is negative: " + cm[t][p]);
                }
            }
        }
        return n;
    }

    private static SymbolAxis symbolAxis(String label, String[] symbols, ConfusionLayout layout) {
        SymbolAxis axis = new SymbolAxis(label, symbols);
        axis.setLabelFont(AXIS_LABEL_FONT);
        axis.setTickLabelFont(layout.tickFont());
        axis.setGridBandsVisible(false);
        axis.setRange(-0.5, symbols.length - 0.5);
        axis.setLowerMargin(0);
        axis.setUpperMargin(0);
        // SymbolAxis has no automatic tick selection: with many classes, label every k-th one instead of a smear.
        axis.setTickUnit(new NumberTickUnit(layout.labelStep()));
        axis.setTickMarksVisible(false);
        axis.setAxisLineVisible(false);
        return axis;
    }

    private static String shorten(String name) {
        return name.length() <= MAX_LABEL_CHARS ? name : name.substring(0, MAX_LABEL_CHARS - 1) + "…";
    }

    private static double[] epochs(MetricsTable table) {
        if (table.hasColumn("epoch")) {
            return table.doubles("epoch");
        }
        double[] rows = new double[table.size()];
        for (int i = 0; i < rows.length; i++) {
            rows[i] = i + 1;
        }
        return rows;
    }

    /** Whether a finite value has no finite neighbour, so that a line through the series would not draw it. */
    private static boolean hasIsolatedPoint(double[] values, double[] epochs) {
        for (int i = 0; i < values.length; i++) {
            if (Double.isNaN(epochs[i]) || !Double.isFinite(values[i])) {
                continue;
            }
            boolean before = i > 0 && Double.isFinite(values[i - 1]) && !Double.isNaN(epochs[i - 1]);
            boolean after = i + 1 < values.length && Double.isFinite(values[i + 1]) && !Double.isNaN(epochs[i + 1]);
            if (!before && !after) {
                return true;
            }
        }
        return false;
    }

    private static JFreeChart lineChart(String title, String yLabel, MetricsTable table, double[] epochs,
            List<String> columns, boolean fraction) {
        XYSeriesCollection dataset = new XYSeriesCollection();
        XYLineAndShapeRenderer renderer = new XYLineAndShapeRenderer(true, table.size() <= 40);
        int other = 0;
        double lowest = Double.POSITIVE_INFINITY;
        double highest = Double.NEGATIVE_INFINITY;
        for (String column : columns) {
            double[] values = table.doubles(column);
            XYSeries series = new XYSeries(column, false, true);
            boolean any = false;
            for (int i = 0; i < values.length; i++) {
                if (Double.isNaN(epochs[i])) {
                    continue;
                }
                if (Double.isFinite(values[i])) {
                    series.add(epochs[i], values[i]);
                    lowest = Math.min(lowest, values[i]);
                    highest = Math.max(highest, values[i]);
                    any = true;
                } else {
                    // A null y breaks the line: an epoch without validation is a gap, not an interpolation.
                    series.add(epochs[i], null);
                }
            }
            if (!any) {
                continue;
            }
            int index = dataset.getSeriesCount();
            dataset.addSeries(series);
            Color color = column.startsWith("train") ? TRAIN_COLOR
                    : column.startsWith("val") ? VAL_COLOR
                    : OTHER_COLORS[other++ % OTHER_COLORS.length];
            renderer.setSeriesPaint(index, color);
            renderer.setSeriesStroke(index, stroke(column));
            if (hasIsolatedPoint(values, epochs)) {
                // Validated every few epochs (train.val_every): each point stands alone, so no line would show it.
                renderer.setSeriesShapesVisible(index, true);
            }
        }

        NumberAxis x = new NumberAxis("epoch");
        x.setStandardTickUnits(NumberAxis.createIntegerTickUnits());
        x.setAutoRangeIncludesZero(false);
        NumberAxis y = new NumberAxis(yLabel);
        if (dataset.getSeriesCount() == 0) {
            // An empty panel keeps the other panel's epochs and a plain 0..1 scale instead of JFreeChart's 0..1
            // epochs and padded values, so it reads as "nothing logged" rather than as a strange chart.
            double first = Double.POSITIVE_INFINITY;
            double last = Double.NEGATIVE_INFINITY;
            for (double epoch : epochs) {
                if (Double.isFinite(epoch)) {
                    first = Math.min(first, epoch);
                    last = Math.max(last, epoch);
                }
            }
            if (first <= last) {
                x.setRange(first - 0.5, last + 0.5);
            }
            y.setRange(0, 1);
        }
        if (fraction) {
            y.setNumberFormatOverride(NumberFormat.getPercentInstance(Locale.ROOT));
            if (lowest <= highest && dataset.getSeriesCount() > 0) {
                // Whole tenths around the data, within 0..100%: early low accuracies stay readable and 100% is
                // never exceeded by the auto-range margin.
                double lo = Math.max(0.0, Math.floor(lowest * 10 - 0.5) / 10);
                double hi = Math.min(1.0, Math.ceil(highest * 10 + 0.5) / 10);
                y.setRange(lo, Math.max(hi, lo + 0.1));
            }
        } else {
            y.setAutoRangeIncludesZero(true);
        }
        for (NumberAxis axis : List.of(x, y)) {
            axis.setLabelFont(AXIS_LABEL_FONT);
            axis.setTickLabelFont(TICK_FONT);
        }
        XYPlot plot = new XYPlot(dataset, x, y, renderer);
        plot.setBackgroundPaint(Color.WHITE);
        plot.setDomainGridlinePaint(GRID_COLOR);
        plot.setRangeGridlinePaint(GRID_COLOR);
        plot.setDomainGridlineStroke(new BasicStroke(1f));
        plot.setRangeGridlineStroke(new BasicStroke(1f));
        plot.setOutlinePaint(Color.GRAY);
        plot.setNoDataMessage("no " + yLabel + " values in the metrics");
        plot.setNoDataMessageFont(LEGEND_FONT);

        JFreeChart chart = new JFreeChart(title, TITLE_FONT, plot, true);
        chart.setBackgroundPaint(Color.WHITE);
        chart.setPadding(new RectangleInsets(8, 8, 8, 16));
        chart.setAntiAlias(true);
        chart.setTextAntiAlias(true);
        chart.getRenderingHints().put(RenderingHints.KEY_STROKE_CONTROL, RenderingHints.VALUE_STROKE_PURE);
        LegendTitle legend = chart.getLegend();
        legend.setItemFont(LEGEND_FONT);
        legend.setFrame(org.jfree.chart.block.BlockBorder.NONE);
        legend.setPosition(RectangleEdge.BOTTOM);
        return chart;
    }

    private static Stroke stroke(String column) {
        Matcher m = TOP_K.matcher(column);
        if (m.find() && !m.group(1).equals("1")) {
            return new BasicStroke(2.2f, BasicStroke.CAP_BUTT, BasicStroke.JOIN_ROUND, 1f, new float[] {7f, 4f}, 0f);
        }
        return new BasicStroke(2.2f, BasicStroke.CAP_ROUND, BasicStroke.JOIN_ROUND);
    }

    private static java.util.Optional<String> best(MetricsTable table, double[] epochs, String column, boolean max) {
        double[] values = table.doubles(column);
        int bestRow = -1;
        for (int i = 0; i < values.length; i++) {
            if (Double.isFinite(values[i])
                    && (bestRow < 0 || (max ? values[i] > values[bestRow] : values[i] < values[bestRow]))) {
                bestRow = i;
            }
        }
        if (bestRow < 0) {
            return java.util.Optional.empty();
        }
        String value = max
                ? String.format(Locale.ROOT, "%.2f%%", values[bestRow] * 100)
                : String.format(Locale.ROOT, "%.4f", values[bestRow]);
        return java.util.Optional.of(String.format(Locale.ROOT, "best %s %s at epoch %s", column, value,
                formatEpoch(epochs[bestRow])));
    }

    private static String formatEpoch(double epoch) {
        return epoch == Math.rint(epoch) ? Long.toString((long) epoch) : Double.toString(epoch);
    }

    private static TextTitle subtitle(String text) {
        TextTitle t = new TextTitle(text, SUBTITLE_FONT);
        t.setPaint(Color.DARK_GRAY);
        return t;
    }

    /**
     * Writes the PNG to a temporary file beside the target, forces it to disk and renames it over the target. Kept
     * private and small on purpose; a shared helper for atomic writes may replace it.
     */
    /** {@code charts} side by side, equal widths, on a white image. */
    private static BufferedImage render(int width, int height, JFreeChart... charts) {
        BufferedImage image = new BufferedImage(width, height, BufferedImage.TYPE_INT_RGB);
        Graphics2D g2 = image.createGraphics();
        try {
            g2.setColor(Color.WHITE);
            g2.fillRect(0, 0, width, height);
            for (int i = 0; i < charts.length; i++) {
                int x0 = width * i / charts.length;
                int x1 = width * (i + 1) / charts.length;
                charts[i].draw(g2, new Rectangle2D.Double(x0, 0, x1 - x0, height));
            }
        } finally {
            g2.dispose();
        }
        return image;
    }

    private static void writePng(BufferedImage image, Path target) {
        Path absolute = target.toAbsolutePath();
        Path dir = absolute.getParent();
        Path temp = dir.resolve("." + absolute.getFileName() + "." + ProcessHandle.current().pid() + "."
                + Thread.currentThread().getId() + ".tmp");
        try {
            Files.createDirectories(dir);
            try (FileChannel channel = FileChannel.open(temp, StandardOpenOption.CREATE,
                    StandardOpenOption.TRUNCATE_EXISTING, StandardOpenOption.WRITE)) {
                OutputStream out = new java.io.BufferedOutputStream(Channels.newOutputStream(channel));
                if (!ImageIO.write(image, "png", out)) {
                    throw new IOException("no PNG writer available");
                }
                out.flush();
                channel.force(true);
            }
            try {
                Files.move(temp, absolute, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(temp, absolute, StandardCopyOption.REPLACE_EXISTING);
            }
        } catch (IOException e) {
            throw new FinetuneException(ErrorKind.OUTPUT, "cannot write " + target + ": " + e, e);
        } finally {
            try {
                Files.deleteIfExists(temp);
            } catch (IOException e) {
                // The write error, if any, is the one to report.
            }
        }
    }

    /** White to dark blue, like matplotlib's "Blues"; grey for NaN (a class with no samples). */
    static final class BluesScale implements PaintScale {
        private static final double[] STOPS = {0.0, 0.25, 0.5, 0.75, 1.0};
        private static final Color[] COLORS = {new Color(0xf7fbff), new Color(0xc6dbef), new Color(0x6baed6),
                new Color(0x2171b5), new Color(0x08306b)};
        private static final Color MISSING = new Color(0xe6e6e6);

        @Override
        public double getLowerBound() {
            return 0;
        }

        @Override
        public double getUpperBound() {
            return 1;
        }

        @Override
        public Paint getPaint(double value) {
            if (Double.isNaN(value)) {
                return MISSING;
            }
            double v = Math.max(0, Math.min(1, value));
            int i = 1;
            while (i < STOPS.length - 1 && v > STOPS[i]) {
                i++;
            }
            double f = (v - STOPS[i - 1]) / (STOPS[i] - STOPS[i - 1]);
            Color a = COLORS[i - 1];
            Color b = COLORS[i];
            return new Color(mix(a.getRed(), b.getRed(), f), mix(a.getGreen(), b.getGreen(), f),
                    mix(a.getBlue(), b.getBlue(), f));
        }

        private static int mix(int a, int b, double f) {
            return (int) Math.round(a + (b - a) * f);
        }
    }

    /**
     * The pixel geometry of a confusion-matrix image, computed from the class names with real font metrics so that
     * cells come out square and labels are not clipped.
     */
    private record ConfusionLayout(int classes, int cell, int rowLabelSpace, int columnLabelSpace,
            boolean rotateColumnLabels, int labelStep, Font tickFont, Font titleFont, int legendSpace) {
        static final int PAD = 10;
        private static final int GRID_TARGET = 640;
        private static final int MIN_CELL = 8;
        private static final int MIN_CELL_WITH_COUNTS = 28;
        private static final int MAX_CELL = 160;
        private static final int MIN_WIDTH = 720;
        /** Measured width of the colour legend (margin, strip, percent labels) at the tick font size. */
        private static final int LEGEND_SPACE = 76;

        static ConfusionLayout of(List<String> classNames) {
            int n = classNames.size();
            int cell = Math.max(MIN_CELL, Math.min(MAX_CELL, GRID_TARGET / n));
            if (n <= MAX_CLASSES_WITH_COUNTS) {
                // Counts need room: up to 30 classes the grid grows rather than the digits shrinking below ~10px.
                cell = Math.max(cell, MIN_CELL_WITH_COUNTS);
            }
            Font tick = n <= MAX_CLASSES_WITH_COUNTS ? TICK_FONT : TICK_FONT.deriveFont(10f);
            FontMetrics tickMetrics = metrics(tick);
            int widest = 0;
            for (String name : classNames) {
                widest = Math.max(widest, tickMetrics.stringWidth(shorten(name)));
            }
            int lineHeight = tickMetrics.getHeight();
            int axisLabelHeight = metrics(AXIS_LABEL_FONT).getHeight();
            boolean rotate = widest > cell - 6;
            int labelStep = Math.max(1, (int) Math.ceil((lineHeight + 2.0) / cell));
            int rowSpace = widest + axisLabelHeight + 14;
            int columnSpace = (rotate ? widest : lineHeight) + axisLabelHeight + 14;
            return new ConfusionLayout(n, cell, rowSpace, columnSpace, rotate, labelStep, tick, TITLE_FONT, LEGEND_SPACE);
        }

        Dimension imageSize() {
            return new Dimension(2 * PAD + contentWidth() + extraWidth(), 2 * PAD + titleSpace() + grid() + 8
                    + columnLabelSpace);
        }

        /**
         * Width added so that a small matrix still gets an image wide enough for its title. It goes beside the plot,
         * because a wider data area would stretch the cells.
         */
        int extraWidth() {
            return Math.max(0, MIN_WIDTH - 2 * PAD - contentWidth());
        }

        private int grid() {
            return classes * cell;
        }

        /** Everything between the side paddings: row labels, the grid with the plot insets, the colour legend. */
        private int contentWidth() {
            return rowLabelSpace + grid() + 8 + legendSpace;
        }

        /** Height of the title and the summary line above the plot. */
        int titleSpace() {
            return metrics(titleFont).getHeight() + metrics(SUBTITLE_FONT).getHeight() + 8;
        }

        Font cellFont(long maxCount) {
            float size = (float) Math.max(7, Math.min(18, cell * 0.4));
            Font font = new Font(FONT, Font.PLAIN, Math.round(size));
            String widestText = Long.toString(maxCount);
            while (font.getSize() > 7 && metrics(font).stringWidth(widestText) > cell * 0.85) {
                font = font.deriveFont((float) font.getSize() - 1);
            }
            return font;
        }

        private static FontMetrics metrics(Font font) {
            BufferedImage scratch = new BufferedImage(1, 1, BufferedImage.TYPE_INT_RGB);
            Graphics2D g = scratch.createGraphics();
            try {
                g.setRenderingHint(RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
                return g.getFontMetrics(font);
            } finally {
                g.dispose();
            }
        }
    }
}
