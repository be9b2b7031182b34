package dev.finetune.cli;

import dev.finetune.data.EvaluationSet;
import dev.finetune.engine.MemoryUse;
import dev.finetune.metrics.ClassScores;
import dev.finetune.metrics.EpochMetrics;
import dev.finetune.predict.Predictor;
import dev.finetune.predict.TrainedModel;
import dev.finetune.predict.Tta;
import dev.finetune.train.StopSignal;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code finetune evaluate --checkpoint F|RUN_DIR --data DIR [--json]}. */
@Command(name = "evaluate", mixinStandardHelpOptions = true,
        description = "Loss, top-1/top-5, per-class precision/recall/F1/support with macro and weighted averages, and"
                + " the confusion matrix on an image folder or Fashion-MNIST's IDX test split.")
final class EvaluateCommand implements Callable<Integer> {
    @Option(names = "--checkpoint", required = true, description = "run directory or checkpoint")
    String checkpoint;

    @Option(names = "--data", required = true, description = "image folder: DIR/<class>/*.png, or DIR/val/<class>/…;"
            + " or a folder of Fashion-MNIST's IDX files (its 10,000-image test split)")
    Path data;

    @CommandLine.Mixin
    InferenceMixin inference;

    @CommandLine.Mixin
    JsonMixin output;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        StopSignal.install("stopping after the current batch");
        PrintWriter out = spec.commandLine().getOut();
        int batchSize = inference.batchSize();
        try (TrainedModel model = inference.open(checkpoint, null)) {
            EvaluationSet set = EvaluationSet.open(data, model.classNames());
            long t0 = System.nanoTime();
            Tta views = inference.tta();
            EpochMetrics m = new Predictor(model, views, batchSize).evaluate(set.dataset());
            double secs = (System.nanoTime() - t0) / 1e9;
            long peak = MemoryUse.peakRssBytes();
            if (output.json()) {
                Map<String, Object> o = new LinkedHashMap<>();
                o.put("checkpoint", model.source().toString());
                o.put("data", set.root().toString());
                o.put("data_description", set.description());
                o.put("images", m.samples());
                o.put("loss", m.loss());
                o.put("tta", views.cliName());
                o.put("top1", m.top1());
                o.put("top5", m.top5());
                o.put("per_class_accuracy", m.perClassAccuracy(model.classNames()));
                o.put("per_class", m.classScores(model.classNames()));
                o.put("averages", m.averages());
                o.put("confusion", m.confusion());
                o.put("fast_path", model.fastPathReports().stream().map(r -> r.toMap()).toList());
                o.put("seconds", secs);
                o.put("peak_rss_bytes", peak);
                out.println(JsonOutput.write(o));
            } else {
                out.printf(Locale.ROOT, "%s on %s: %d images%n", model.source(), set.description(), m.samples());
                out.printf(Locale.ROOT, "loss %.4f  top-1 %.2f%%  top-%d %.2f%%%n", m.loss(), 100 * m.top1(),
                        m.topK(), 100 * m.top5());
                out.printf(Locale.ROOT, "  %-16s %9s %9s %9s %9s%n", "class", "precision", "recall", "f1",
                        "support");
                m.classScores(model.classNames()).forEach((k, v) -> out.printf(Locale.ROOT,
                        "  %-16s %9.4f %9.4f %9.4f %9d%n", k, v.precision(), v.recall(), v.f1(), v.support()));
                ClassScores.Averages a = m.averages();
                out.printf(Locale.ROOT, "  %-16s %9.4f %9.4f %9.4f %9d%n", "macro avg", a.macroPrecision(),
                        a.macroRecall(), a.macroF1(), m.samples());
                out.printf(Locale.ROOT, "  %-16s %9.4f %9.4f %9.4f %9d%n", "weighted avg", a.weightedPrecision(),
                        a.weightedRecall(), a.weightedF1(), m.samples());
                out.printf(Locale.ROOT, "%.1f s, %.0f img/s, peak memory (RSS) %.0f MiB, no autograd graph%n", secs,
                        m.samples() / secs, peak / 1048576.0);
            }
        }
        out.flush();
        return 0;
    }
}
