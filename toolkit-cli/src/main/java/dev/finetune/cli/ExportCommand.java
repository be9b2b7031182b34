package dev.finetune.cli;

import dev.finetune.export.Exporter;
import dev.finetune.predict.TrainedModel;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code finetune export --checkpoint F --format pth|safetensors --out FILE}. */
@Command(name = "export", mixinStandardHelpOptions = true,
        description = "Write the model as a torchvision state_dict (.pth or safetensors) plus FILE.json with class"
                + " names and preprocessing.")
final class ExportCommand implements Callable<Integer> {
    @Option(names = "--checkpoint", required = true, description = "run directory or checkpoint")
    String checkpoint;

    @Option(names = "--format", required = true, description = "pth, safetensors or onnx (opset 17, float32)")
    String format;

    @Option(names = "--out", required = true, description = "output file")
    Path out;

    @Option(names = "--dtype", defaultValue = "f32", description = "f32 (default) or f16 (safetensors only)")
    String dtype;

    @Option(names = "--dynamic-batch", description = "onnx: a symbolic batch dimension (default: batch 1)")
    boolean dynamicBatch;

    @Option(names = "--normalize-in-graph",
            description = "onnx: the graph takes RGB values 0-255 (after resize and crop) and normalizes them itself")
    boolean normalizeInGraph;

    @Option(names = "--force", description = "replace an existing output file and its sidecar")
    boolean force;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        Exporter.Format f = Exporter.Format.parse(format);
        PrintWriter o = spec.commandLine().getOut();
        try (TrainedModel model = TrainedModel.open(checkpoint, null)) {
            Path side = Exporter.export(model, f, out, dtype.toUpperCase(java.util.Locale.ROOT), force,
                    new Exporter.OnnxOptions(dynamicBatch, normalizeInGraph));
            o.printf("wrote %s (%s, %d classes) and %s%n", out, f.name().toLowerCase(), model.classNames().size(),
                    side);
        }
        o.flush();
        return 0;
    }
}
