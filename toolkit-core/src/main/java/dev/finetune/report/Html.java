package dev.finetune.report;

import static dev.finetune.report.Svg.esc;

import com.fasterxml.jackson.databind.JsonNode;
import dev.finetune.inspect.InspectReport;
import dev.finetune.metrics.ClassScores;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/** The HTML of {@code report.html}: sections in a fixed order, inline CSS, no script. */
final class Html {
    private Html() {}

    record Inputs(Path runDir, JsonNode run, JsonNode summary, List<JsonNode> epochs, List<String> classes,
            int bestEpoch, RunReport.Evaluation eval, InspectReport inspect, List<Svg.MapTensor> tensors, String arch,
            String configYaml, Map<String, String> versions) {}

    private static final String CSS = """
            body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2330;margin:0;\
            background:#f6f7f9}
            main{max-width:1120px;margin:0 auto;padding:18px 24px 60px}
            h1{font-size:22px;margin:8px 0 4px}h2{font-size:17px;margin:0 0 10px}
            section{background:#fff;border:1px solid #e1e4e8;border-radius:8px;padding:16px 18px;margin:14px 0}
            .meta{color:#4a5568;margin:0 0 6px}.meta b{color:#1d2330}
            nav a{margin-right:12px;color:#1f5fa8;text-decoration:none}
            table{border-collapse:collapse;font-variant-numeric:tabular-nums}
            th,td{padding:4px 10px;border-bottom:1px solid #edf0f3;text-align:right}
            th:first-child,td:first-child{text-align:left}
            tfoot td{font-weight:600;border-top:2px solid #cfd5dc}
            .charts{display:flex;flex-wrap:wrap;gap:12px}
            svg.chart{max-width:100%;height:auto;background:#fff}
            svg .title{font-size:13px;font-weight:600}svg .tick{font-size:11px;fill:#4a5568}
            svg .tiny{font-size:9px;fill:#4a5568}svg .axis{font-size:11px;fill:#1d2330}
            svg .grid{stroke:#e6e9ed}svg .cell{font-size:11px;fill:#1d2330}svg .cell.light{fill:#fff}
            svg .bar{fill:#4c8dc9}svg .ideal{stroke:#d62728;stroke-dasharray:4 3;stroke-width:1.5}
            svg .stage{font-size:12px;font-weight:600}
            svg .frontier{stroke:#d62728;stroke-width:2;stroke-dasharray:6 4}
            svg .frontier-label{font-size:11px;fill:#d62728;font-weight:600}
            .gallery{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:12px}
            figure{margin:0;border:1px solid #e1e4e8;border-radius:6px;padding:8px;text-align:center}
            figure img{width:112px;height:112px;object-fit:contain;image-rendering:pixelated;background:#000}
            figcaption{font-size:12px;margin-top:4px;text-align:left}.wrong{color:#c53030}.right{color:#2f855a}
            .src{color:#718096;font-size:11px;word-break:break-all}
            pre{background:#f6f8fa;padding:10px;border-radius:6px;overflow:auto;font-size:12px}
            details{margin-top:8px}summary{cursor:pointer;color:#1f5fa8}
            .note{color:#4a5568}
            table.kv td{text-align:left;word-break:break-all}table.kv td:first-child{white-space:nowrap;color:#4a5568}
            """;

    static String page(Inputs in) {
        StringBuilder h = new StringBuilder();
        String name = in.inspect().experiment();
        h.append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">")
                .append("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">")
                .append("<title>").append(esc("Run report: " + name)).append("</title><style>").append(CSS)
                .append("</style></head><body><main>\n");
        header(h, in);
        curves(h, in);
        if (in.eval() == null) {
            h.append("<section id=\"validation\"><h2>Validation</h2><p class=\"note\">This run has no validation set"
                    + " (data.val_split 0 and no val/ folder), so there is no confusion matrix, per-class table,"
                    + " gallery of mistakes or calibration.</p></section>\n");
        } else {
            confusion(h, in);
            perClass(h, in);
            mistakes(h, in);
            calibration(h, in);
        }
        freezeMap(h, in);
        h.append("<section id=\"config\"><h2>Resolved config</h2><pre>").append(esc(in.configYaml()))
                .append("</pre></section>\n");
        versions(h, in);
        return h.append("</main></body></html>\n").toString();
    }

    private static void header(StringBuilder h, Inputs in) {
        JsonNode s = in.summary();
        JsonNode r = in.run();
        h.append("<header><h1>Run report: ").append(esc(in.inspect().experiment())).append("</h1>");
        h.append(String.format(Locale.ROOT, "<p class=\"meta\"><b>%s</b>, %d classes · %s train / %s validation"
                + " images · seed %s · %s</p>", esc(in.arch()), in.classes().size(), r.path("train_images").asText("?"),
                r.path("val_images").asText("?"), r.path("seed").asText("?"), esc(in.runDir().toString())));
        if (s != null) {
            int segments = s.path("segments").asInt(1);
            h.append(String.format(Locale.ROOT, "<p class=\"meta\">%s epochs · best <b>%s %.4f</b> at epoch %d · wall"
                    + " %.1f s · peak RSS %.0f MiB%s%s</p>", s.path("epochs_completed").asText("?"),
                    esc(s.path("best_metric").asText("?")), s.path("best_value").asDouble(Double.NaN), in.bestEpoch(),
                    s.path("wall_seconds").asDouble(Double.NaN), s.path("peak_rss_bytes").asDouble(0) / 1048576.0,
                    segments > 1 ? " (" + segments + " processes: stopped and resumed)" : "",
                    s.path("stopped_early").isNull() || s.path("stopped_early").isMissingNode() ? ""
                            : " · stopped early: " + esc(s.path("stopped_early").asText())));
        } else {
            h.append("<p class=\"meta\">The run has not finished (no summary.json); this report shows the best"
                    + " checkpoint so far, epoch ").append(in.bestEpoch()).append(".</p>");
        }
        h.append(String.format(Locale.ROOT, "<p class=\"meta\">policy: %s · trainable %,d of %,d parameters (%.2f%%)"
                + "</p>", esc(in.inspect().policy()), in.inspect().trainableParams(),
                in.inspect().trainableParams() + in.inspect().frozenParams(), in.inspect().trainablePercent()));
        h.append("<nav><a href=\"#curves\">curves</a>");
        if (in.eval() != null) {
            h.append("<a href=\"#confusion\">confusion</a><a href=\"#per-class\">per class</a>"
                    + "<a href=\"#mistakes\">mistakes</a><a href=\"#calibration\">calibration</a>");
        }
        h.append("<a href=\"#freeze-map\">freeze map</a><a href=\"#config\">config</a><a href=\"#versions\">versions</a>"
                + "</nav></header>\n");
    }

    private static void curves(StringBuilder h, Inputs in) {
        int n = in.epochs().size();
        h.append("<section id=\"curves\"><h2>Training curves</h2>");
        if (n == 0) {
            h.append("<p class=\"note\">No epoch has finished yet.</p></section>\n");
            return;
        }
        h.append("<div class=\"charts\">");
        h.append(Svg.lines("loss", n, List.of(new Svg.Series("train loss", column(in, "train_loss")),
                new Svg.Series("validation loss", column(in, "val_loss"))), false));
        List<Svg.Series> acc = new ArrayList<>();
        acc.add(new Svg.Series("val top-1", column(in, "val_top1")));
        acc.add(new Svg.Series("val macro F1", column(in, "val_macro_f1")));
        h.append(Svg.lines("validation accuracy and macro F1", n, acc, true));
        h.append("</div></section>\n");
    }

    private static double[] column(Inputs in, String key) {
        double[] v = new double[in.epochs().size()];
        for (int i = 0; i < v.length; i++) {
            JsonNode x = in.epochs().get(i).get(key);
            v[i] = x == null || !x.isNumber() ? Double.NaN : x.asDouble();
        }
        return v;
    }

    private static void confusion(StringBuilder h, Inputs in) {
        h.append("<section id=\"confusion\"><h2>Confusion matrix — best checkpoint (epoch ").append(in.bestEpoch())
                .append(")</h2>").append(Svg.confusion(in.eval().confusion(), in.classes())).append("</section>\n");
    }

    private static void perClass(StringBuilder h, Inputs in) {
        List<ClassScores> scores = ClassScores.of(in.eval().confusion());
        ClassScores.Averages avg = ClassScores.Averages.of(scores);
        long correct = 0;
        for (int i = 0; i < in.eval().label().length; i++) {
            correct += in.eval().label()[i] == in.eval().predicted()[i] ? 1 : 0;
        }
        h.append("<section id=\"per-class\"><h2>Per-class metrics — best checkpoint (epoch ").append(in.bestEpoch())
                .append(")</h2><table id=\"per-class-table\"><thead><tr><th>class</th><th>precision</th><th>recall</th>"
                        + "<th>F1</th><th>support</th></tr></thead><tbody>");
        for (int c = 0; c < scores.size(); c++) {
            ClassScores s = scores.get(c);
            h.append(String.format(Locale.ROOT, "<tr><td>%s</td><td>%.3f</td><td>%.3f</td><td>%.3f</td><td>%d</td></tr>",
                    esc(in.classes().get(c)), s.precision(), s.recall(), s.f1(), s.support()));
        }
        long total = in.eval().label().length;
        h.append(String.format(Locale.ROOT, "</tbody><tfoot><tr><td>macro average</td><td>%.3f</td><td>%.3f</td>"
                + "<td>%.3f</td><td>%d</td></tr><tr><td>weighted average</td><td>%.3f</td><td>%.3f</td><td>%.3f</td>"
                + "<td>%d</td></tr><tr><td>accuracy</td><td></td><td></td><td>%.3f</td><td>%d</td></tr></tfoot></table>"
                + "</section>%n", avg.macroPrecision(), avg.macroRecall(), avg.macroF1(), total,
                avg.weightedPrecision(), avg.weightedRecall(), avg.weightedF1(), total,
                total == 0 ? 0 : (double) correct / total, total));
    }

    private static void mistakes(StringBuilder h, Inputs in) {
        List<RunReport.Mistake> m = in.eval().mistakes();
        h.append("<section id=\"mistakes\"><h2>Most confidently wrong validation images</h2>");
        if (m.isEmpty()) {
            h.append("<p class=\"note\">The best checkpoint classifies every validation image correctly.</p>");
        } else {
            h.append("<p class=\"note\">The ").append(m.size()).append(" mistakes with the highest predicted"
                    + " probability, as the model saw them (after resize and crop).</p><div class=\"gallery\">");
            for (RunReport.Mistake x : m) {
                String file = x.source().replaceAll(".*[/\\\\]", "");
                h.append(String.format(Locale.ROOT, "<figure><img alt=\"%s\" src=\"data:image/png;base64,%s\">"
                        + "<figcaption><span class=\"wrong\">predicted %s %.1f%%</span><br><span class=\"right\">true"
                        + " %s %.1f%%</span><br><span class=\"src\" title=\"%s\">%s</span></figcaption></figure>",
                        esc("true " + in.classes().get(x.label()) + ", predicted " + in.classes().get(x.predicted())),
                        x.png(), esc(in.classes().get(x.predicted())), 100 * x.pPredicted(),
                        esc(in.classes().get(x.label())), 100 * x.pTrue(), esc(x.source()), esc(file)));
            }
            h.append("</div>");
        }
        h.append("</section>\n");
    }

    private static void calibration(StringBuilder h, Inputs in) {
        RunReport.Evaluation e = in.eval();
        boolean[] correct = new boolean[e.label().length];
        for (int i = 0; i < correct.length; i++) {
            correct[i] = e.label()[i] == e.predicted()[i];
        }
        Svg.Calibration c = Svg.Calibration.of(e.confidence(), correct, RunReport.BINS);
        h.append("<section id=\"calibration\"><h2>Calibration — reliability diagram</h2>")
                .append(String.format(Locale.ROOT, "<p class=\"note\">Expected calibration error <b id=\"ece\">%.4f</b>:"
                        + " the gap between confidence and accuracy, averaged over %d equal-width confidence bins"
                        + " weighted by their images. Bars below the diagonal are over-confident.</p>", c.ece(),
                        c.bins()))
                .append(Svg.reliability(c)).append("</section>\n");
    }

    private static void freezeMap(StringBuilder h, Inputs in) {
        InspectReport.Frontier f = in.inspect().frontier();
        h.append("<section id=\"freeze-map\"><h2>Freeze map — ").append(in.tensors().size())
                .append(" tensors by stage (epoch ").append(in.bestEpoch()).append(" plan)</h2>")
                .append(String.format(Locale.ROOT, "<p class=\"note\">Backward frontier: <b>%s</b>; %s run without"
                        + " autograd, saving ~%.1f of %.1f MiB of activations per image at %d×%d. Hover a square for"
                        + " its tensor.</p>", esc(f.firstTrainableStage()),
                        f.noGradStages().isEmpty() ? "no stage" : esc(String.join(", ", f.noGradStages())),
                        f.savedActivationBytesPerImage() / 1048576.0, f.totalActivationBytesPerImage() / 1048576.0,
                        f.imageSize(), f.imageSize()))
                .append(Svg.freezeMap(in.inspect().stages(), in.tensors(), f.noGradStages()));
        h.append("<details><summary>every tensor, by stage</summary>");
        for (String stage : in.inspect().stages()) {
            h.append("<h3>").append(esc(stage)).append("</h3><table class=\"tensors\"><tbody>");
            for (Svg.MapTensor t : in.tensors()) {
                if (t.stage().equals(stage)) {
                    h.append(String.format(Locale.ROOT, "<tr><td>%s</td><td>%s</td><td>%,d</td><td>%s</td></tr>",
                            esc(t.name()), t.shape(), t.count(), t.state()));
                }
            }
            h.append("</tbody></table>");
        }
        h.append("</details></section>\n");
    }

    private static void versions(StringBuilder h, Inputs in) {
        h.append("<section id=\"versions\"><h2>Versions</h2><table class=\"kv\"><tbody>");
        in.versions().forEach((k, v) -> h.append("<tr><td>").append(esc(k)).append("</td><td>").append(esc(v))
                .append("</td></tr>"));
        JsonNode r = in.run();
        for (String k : List.of("engine", "started", "data", "data_fingerprint")) {
            if (r.hasNonNull(k)) {
                h.append("<tr><td>").append(k).append("</td><td>").append(esc(r.get(k).asText())).append("</td></tr>");
            }
        }
        h.append("</tbody></table></section>\n");
    }
}
