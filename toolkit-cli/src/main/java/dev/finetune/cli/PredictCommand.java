package dev.finetune.cli;

import dev.finetune.engine.MemoryUse;
import dev.finetune.predict.Predictor;
import dev.finetune.predict.TrainedModel;
import dev.finetune.train.StopSignal;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code finetune predict --checkpoint F IMAGES… [--top-k 5] [--json]}. */
@Command(name = "predict", mixinStandardHelpOptions = true,
        description = "Top-k classes for image files, with the model's own preprocessing and no autograd graph.")
final class PredictCommand implements Callable<Integer> {
    @Option(names = "--checkpoint", required = true, description = "run directory, finetune checkpoint, .pth,"
            + " .safetensors or torchvision:resnet18")
    String checkpoint;

    @Option(names = "--arch", description = "architecture for plain .pth/.safetensors files (default: the one its"
            + " keys and shapes show, else resnet18)")
    String arch;

    @Parameters(paramLabel = "IMAGE", arity = "1..*", description = "image files, or folders (every image below)")
    List<Path> images;

    @CommandLine.Mixin
    InferenceMixin inference;

    @Option(names = "--top-k", defaultValue = "5", description = "classes to show (${DEFAULT-VALUE})")
    int topK;

    @CommandLine.Mixin
    JsonMixin output;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        StopSignal.install("stopping after the current batch");
        if (topK < 1) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--top-k must be >= 1, found " + topK);
        }
        int batchSize = inference.batchSize();
        PrintWriter out = spec.commandLine().getOut();
        try (TrainedModel model = inference.open(checkpoint, arch)) {
            List<Predictor.Prediction> preds = new Predictor(model, inference.tta(), batchSize).predict(images, topK);
            long peak = MemoryUse.peakRssBytes();
            if (output.json()) {
                Map<String, Object> o = new LinkedHashMap<>();
                o.put("checkpoint", model.source().toString());
                o.put("predictions", preds);
                o.put("peak_rss_bytes", peak);
                out.println(JsonOutput.write(o));
            } else {
                for (Predictor.Prediction p : preds) {
                    out.println(p.file());
                    for (Predictor.Scored s : p.top()) {
                        out.printf(Locale.ROOT, "  %6.2f%%  %s%n", 100 * s.probability(), s.label());
                    }
                }
                out.printf(Locale.ROOT, "peak memory (RSS): %.0f MiB; no autograd graph was recorded%n",
                        peak / 1048576.0);
            }
        }
        out.flush();
        return 0;
    }

}
