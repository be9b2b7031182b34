package dev.finetune.report;

import java.util.List;
import java.util.Locale;

/**
 * Inline SVG charts for {@code report.html}: text, so the page stays one self-contained file that renders offline
 * and scales on any screen; hover titles name every cell and tensor. Written by hand: the charts are a few dozen
 * elements each, and JFreeChart (used for the PNGs in {@code plots/}) draws raster or needs an extra SVG module.
 */
final class Svg {
    private Svg() {}

    static final String[] SERIES = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd"};

    /** One line series of a chart: a name and its y value per x (NaN: no point). */
    record Series(String name, double[] y) {}

    static String esc(String s) {
        return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\"", "&quot;");
    }

    static String f(double v) {
        return String.format(Locale.ROOT, "%.1f", v);
    }

    /** A line chart over epochs 1..n with a y axis from the data's range (or [0, 1] when {@code unit}). */
    static String lines(String title, int epochs, List<Series> series, boolean unit) {
        int w = 520;
        int h = 300;
        int l = 56;
        int r = 16;
        int t = 34;
        int b = 44;
        double lo = unit ? 0 : Double.POSITIVE_INFINITY;
        double hi = unit ? 1 : Double.NEGATIVE_INFINITY;
        if (!unit) {
            for (Series s : series) {
                for (double v : s.y()) {
                    if (Double.isFinite(v)) {
                        lo = Math.min(lo, v);
                        hi = Math.max(hi, v);
                    }
                }
            }
            if (!Double.isFinite(lo)) {
                lo = 0;
                hi = 1;
            }
            lo = Math.max(0, lo - 0.05 * (hi - lo));
            hi = hi + 0.05 * (hi - lo) + 1e-9;
        }
        double pw = w - l - r;
        double ph = h - t - b;
        StringBuilder s = new StringBuilder();
        s.append(String.format(Locale.ROOT, "<svg class=\"chart\" role=\"img\" aria-label=\"%s\" viewBox=\"0 0 %d %d\""
                + " width=\"%d\" height=\"%d\" xmlns=\"http://www.w3.org/2000/svg\">", esc(title), w, h, w, h));
        s.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"20\" class=\"title\">%s</text>", l, esc(title)));
        for (int i = 0; i <= 4; i++) {
            double v = lo + (hi - lo) * i / 4;
            double y = t + ph - ph * i / 4;
            s.append(String.format(Locale.ROOT, "<line x1=\"%d\" x2=\"%s\" y1=\"%s\" y2=\"%s\" class=\"grid\"/>"
                    + "<text x=\"%d\" y=\"%s\" class=\"tick\" text-anchor=\"end\">%s</text>", l, f(l + pw), f(y), f(y),
                    l - 6, f(y + 4), String.format(Locale.ROOT, unit ? "%.2f" : "%.3g", v)));
        }
        int step = Math.max(1, (int) Math.ceil(epochs / 10.0));
        for (int e = 1; e <= epochs; e += step) {
            double x = l + (epochs == 1 ? pw / 2 : pw * (e - 1) / (epochs - 1));
            s.append(String.format(Locale.ROOT, "<text x=\"%s\" y=\"%d\" class=\"tick\" text-anchor=\"middle\">%d"
                    + "</text>", f(x), h - b + 16, e));
        }
        s.append(String.format(Locale.ROOT, "<text x=\"%s\" y=\"%d\" class=\"axis\" text-anchor=\"middle\">epoch</text>",
                f(l + pw / 2), h - 8));
        for (int k = 0; k < series.size(); k++) {
            Series se = series.get(k);
            StringBuilder pts = new StringBuilder();
            for (int e = 0; e < se.y().length; e++) {
                if (Double.isFinite(se.y()[e])) {
                    double x = l + (epochs == 1 ? pw / 2 : pw * e / (epochs - 1));
                    double y = t + ph - ph * (se.y()[e] - lo) / (hi - lo);
                    pts.append(f(x)).append(',').append(f(y)).append(' ');
                    s.append(String.format(Locale.ROOT, "<circle cx=\"%s\" cy=\"%s\" r=\"2.5\" fill=\"%s\"><title>%s,"
                            + " epoch %d: %.4f</title></circle>", f(x), f(y), SERIES[k % SERIES.length],
                            esc(se.name()), e + 1, se.y()[e]));
                }
            }
            s.append(String.format(Locale.ROOT, "<polyline points=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\"/>",
                    pts.toString().trim(), SERIES[k % SERIES.length]));
            s.append(String.format(Locale.ROOT, "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"3\" fill=\"%s\"/>"
                    + "<text x=\"%d\" y=\"%d\" class=\"tick\">%s</text>", l + 8 + 130 * k, t + 6,
                    SERIES[k % SERIES.length], l + 24 + 130 * k, t + 10, esc(se.name())));
        }
        return s.append("</svg>").toString();
    }

    /** The confusion matrix as a heatmap shaded by each row's share, counts in the cells. */
    static String confusion(long[][] m, List<String> names) {
        int n = m.length;
        int cell = Math.max(14, Math.min(48, 560 / Math.max(1, n)));
        int label = 8 + 7 * names.stream().mapToInt(String::length).max().orElse(4);
        int w = label + n * cell + 10;
        int h = label + n * cell + 30;
        StringBuilder s = new StringBuilder();
        s.append(String.format(Locale.ROOT, "<svg class=\"chart\" role=\"img\" aria-label=\"confusion matrix\""
                + " viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\" xmlns=\"http://www.w3.org/2000/svg\">", w, h, w, h));
        for (int i = 0; i < n; i++) {
            long row = 0;
            for (long v : m[i]) {
                row += v;
            }
            for (int j = 0; j < n; j++) {
                double share = row == 0 ? 0 : (double) m[i][j] / row;
                String fill = i == j ? String.format(Locale.ROOT, "rgba(31,119,180,%.3f)", 0.08 + 0.92 * share)
                        : String.format(Locale.ROOT, "rgba(214,39,40,%.3f)", share == 0 ? 0.03 : 0.15 + 0.85 * share);
                int x = label + j * cell;
                int y = label + i * cell;
                s.append(String.format(Locale.ROOT, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\""
                        + " stroke=\"#fff\"><title>true %s, predicted %s: %d (%.1f%% of %s)</title></rect>", x, y, cell,
                        cell, fill, esc(names.get(i)), esc(names.get(j)), m[i][j], 100 * share, esc(names.get(i))));
                if (cell >= 22 && m[i][j] > 0) {
                    s.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\" class=\"cell%s\""
                            + " text-anchor=\"middle\">%d</text>", x + cell / 2, y + cell / 2 + 4,
                            share > 0.55 ? " light" : "", m[i][j]));
                }
            }
            s.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\" class=\"tick\" text-anchor=\"end\">%s</text>",
                    label - 4, label + i * cell + cell / 2 + 4, esc(names.get(i))));
            s.append(String.format(Locale.ROOT, "<text class=\"tick\" text-anchor=\"start\" transform=\"translate(%d %d)"
                    + " rotate(-90)\">%s</text>", label + i * cell + cell / 2 + 4, label - 4, esc(names.get(i))));
        }
        s.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\" class=\"axis\">rows: true class · columns:"
                + " predicted class</text>", label, h - 8));
        return s.append("</svg>").toString();
    }

    /** Reliability diagram: accuracy per confidence bin against the diagonal, with the bin counts. */
    static String reliability(Calibration c) {
        int w = 420;
        int h = 340;
        int l = 50;
        int t = 30;
        int size = 260;
        StringBuilder s = new StringBuilder();
        s.append(String.format(Locale.ROOT, "<svg class=\"chart\" role=\"img\" aria-label=\"reliability diagram\""
                + " viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\" xmlns=\"http://www.w3.org/2000/svg\">", w, h, w, h));
        s.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"18\" class=\"title\">ECE %.4f over %d images, %d"
                + " bins</text>", l, c.ece(), c.total(), c.bins()));
        for (int i = 0; i <= 4; i++) {
            double y = t + size - size * i / 4.0;
            s.append(String.format(Locale.ROOT, "<line x1=\"%d\" x2=\"%d\" y1=\"%s\" y2=\"%s\" class=\"grid\"/>"
                    + "<text x=\"%d\" y=\"%s\" class=\"tick\" text-anchor=\"end\">%.2f</text>"
                    + "<text x=\"%s\" y=\"%d\" class=\"tick\" text-anchor=\"middle\">%.2f</text>", l, l + size, f(y),
                    f(y), l - 6, f(y + 4), i / 4.0, f(l + size * i / 4.0), t + size + 16, i / 4.0));
        }
        double bw = (double) size / c.bins();
        for (int b = 0; b < c.bins(); b++) {
            if (c.count()[b] == 0) {
                continue;
            }
            double acc = c.accuracy()[b];
            double x = l + b * bw;
            s.append(String.format(Locale.ROOT, "<rect x=\"%s\" y=\"%s\" width=\"%s\" height=\"%s\" class=\"bar\">"
                    + "<title>confidence %.1f–%.1f: %d images, accuracy %.3f, mean confidence %.3f</title></rect>",
                    f(x + 1), f(t + size - size * acc), f(bw - 2), f(size * acc), b / (double) c.bins(),
                    (b + 1) / (double) c.bins(), c.count()[b], acc, c.confidence()[b]));
            s.append(String.format(Locale.ROOT, "<text x=\"%s\" y=\"%s\" class=\"tiny\" text-anchor=\"middle\">%d"
                    + "</text>", f(x + bw / 2), f(t + size - size * acc - 3), c.count()[b]));
        }
        s.append(String.format(Locale.ROOT, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" class=\"ideal\"/>", l,
                t + size, l + size, t));
        s.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\" class=\"axis\" text-anchor=\"middle\">confidence"
                + " (top-1 probability)</text><text class=\"axis\" text-anchor=\"middle\" transform=\"translate(14 %d)"
                + " rotate(-90)\">accuracy</text>", l + size / 2, t + size + 34, t + size / 2));
        s.append(String.format(Locale.ROOT, "<g transform=\"translate(%d %d)\"><rect width=\"12\" height=\"10\""
                + " class=\"bar\"/><text x=\"16\" y=\"9\" class=\"tick\">accuracy</text><text x=\"16\" y=\"21\""
                + " class=\"tiny\">(images above bar)</text><line x1=\"0\" x2=\"12\" y1=\"36\" y2=\"36\" class=\"ideal\"/>"
                + "<text x=\"16\" y=\"40\" class=\"tick\">perfect</text><text x=\"16\" y=\"52\" class=\"tiny\">"
                + "calibration</text></g>", l + size + 14, t + 4));
        return s.append("</svg>").toString();
    }

    /** Confidence-binned accuracy and the expected calibration error (equal-width bins over [0, 1]). */
    record Calibration(int bins, long[] count, double[] accuracy, double[] confidence, double ece, long total) {
        static Calibration of(float[] confidence, boolean[] correct, int bins) {
            long[] n = new long[bins];
            double[] acc = new double[bins];
            double[] conf = new double[bins];
            for (int i = 0; i < confidence.length; i++) {
                int b = Math.min(bins - 1, (int) (confidence[i] * bins));
                n[b]++;
                acc[b] += correct[i] ? 1 : 0;
                conf[b] += confidence[i];
            }
            double ece = 0;
            for (int b = 0; b < bins; b++) {
                if (n[b] > 0) {
                    acc[b] /= n[b];
                    conf[b] /= n[b];
                    ece += (double) n[b] / confidence.length * Math.abs(acc[b] - conf[b]);
                }
            }
            return new Calibration(bins, n, acc, conf, ece, confidence.length);
        }
    }

    /** One tensor on the freeze map. */
    record MapTensor(String name, String stage, String state, long count, List<Long> shape) {}

    static final List<String> STATES = List.of("trainable", "frozen", "statistics updating", "frozen statistics");
    static final String[] STATE_COLOURS = {"#2ca02c", "#9aa5b1", "#ff9f1c", "#5b4b8a"};

    /**
     * Every tensor as a square in its stage's row, coloured by its state, stages in forward order; a dashed line marks
     * the backward frontier (stages above it run without autograd).
     */
    static String freezeMap(List<String> stages, List<MapTensor> tensors, List<String> noGradStages) {
        int per = 48;
        int sq = 11;
        int l = 170;
        int t = 16;
        int[] rows = new int[stages.size()];
        for (int i = 0; i < stages.size(); i++) {
            String st = stages.get(i);
            long k = tensors.stream().filter(x -> x.stage().equals(st)).count();
            rows[i] = (int) Math.max(1, (k + per - 1) / per);
        }
        int w = l + per * (sq + 2) + 20;
        StringBuilder s = new StringBuilder();
        int y = t;
        boolean frontierDrawn = false;
        for (int i = 0; i < stages.size(); i++) {
            String st = stages.get(i);
            if (!frontierDrawn && !noGradStages.isEmpty() && !noGradStages.contains(st)) {
                s.append(String.format(Locale.ROOT, "<line x1=\"4\" x2=\"%d\" y1=\"%d\" y2=\"%d\" class=\"frontier\"/>"
                        + "<text x=\"%d\" y=\"%d\" class=\"frontier-label\">backward frontier: autograd starts at %s;"
                        + " everything above runs without a graph</text>", w - 4, y, y, l, y + 13, esc(st)));
                y += 22;
                frontierDrawn = true;
            }
            List<MapTensor> in = tensors.stream().filter(x -> x.stage().equals(st)).toList();
            long trainable = in.stream().filter(x -> x.state().equals("trainable")).mapToLong(MapTensor::count).sum();
            long params = in.stream().filter(x -> x.state().equals("trainable") || x.state().equals("frozen"))
                    .mapToLong(MapTensor::count).sum();
            s.append(String.format(Locale.ROOT, "<text x=\"4\" y=\"%d\" class=\"stage\">%s</text><text x=\"4\" y=\"%d\""
                    + " class=\"tiny\">%d tensors, %s%% trainable</text>", y + 9, esc(st), y + 21, in.size(),
                    params == 0 ? "0" : String.format(Locale.ROOT, "%.1f", 100.0 * trainable / params)));
            for (int k = 0; k < in.size(); k++) {
                MapTensor m = in.get(k);
                int x = l + (k % per) * (sq + 2);
                int yy = y + (k / per) * (sq + 2);
                s.append(String.format(Locale.ROOT, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" rx=\"2\""
                        + " fill=\"%s\" data-state=\"%s\"><title>%s %s: %s (%,d)</title></rect>", x, yy, sq, sq,
                        STATE_COLOURS[STATES.indexOf(m.state())], m.state(), esc(m.name()), m.shape(), m.state(),
                        m.count()));
            }
            y += Math.max(rows[i] * (sq + 2), 24) + 10;
        }
        int lx = 4;
        for (int k = 0; k < STATES.size(); k++) {
            s.append(String.format(Locale.ROOT, "<rect x=\"%d\" y=\"%d\" width=\"11\" height=\"11\" rx=\"2\" fill=\"%s\"/>"
                    + "<text x=\"%d\" y=\"%d\" class=\"tick\">%s</text>", lx, y + 4, STATE_COLOURS[k], lx + 15, y + 13,
                    STATES.get(k)));
            lx += 40 + 7 * STATES.get(k).length();
        }
        int h = y + 24;
        return String.format(Locale.ROOT, "<svg class=\"chart\" role=\"img\" aria-label=\"freeze map\" viewBox=\"0 0 %d"
                + " %d\" width=\"%d\" height=\"%d\" xmlns=\"http://www.w3.org/2000/svg\">", w, h, w, h) + s + "</svg>";
    }
}
