package dev.finetune.cli;

import ai.djl.ndarray.NDManager;
import dev.finetune.checkpoint.Checkpoint;
import dev.finetune.checkpoint.Checkpoints;
import dev.finetune.engine.Engines;
import dev.finetune.model.Architecture;
import dev.finetune.model.Architectures;
import dev.finetune.model.Network;
import dev.finetune.model.ResNetArch;
import dev.finetune.weights.ArchitectureRecognizer;
import dev.finetune.weights.KeyMapping;
import dev.finetune.weights.LoadReport;
import dev.finetune.weights.WeightLoader;
import java.io.PrintWriter;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code finetune checkpoint …}: look at checkpoint files. */
@Command(name = "checkpoint", description = "Checkpoint files.", subcommands = {CheckpointCommand.Inspect.class},
        mixinStandardHelpOptions = true)
final class CheckpointCommand implements Runnable {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        throw new CommandLine.ParameterException(spec.commandLine(), "a subcommand is required: inspect");
    }

    /** {@code finetune checkpoint inspect FILE [--json]}. */
    @Command(name = "inspect", mixinStandardHelpOptions = true,
            description = "Format, tensors, dtypes, and how the keys map onto a torchvision architecture.")
    static final class Inspect implements Callable<Integer> {
        @Parameters(paramLabel = "FILE", description = "a .pth, .safetensors or finetune checkpoint, or"
                + " torchvision:resnet18")
        String source;

        @Option(names = "--arch", description = "architecture to map onto (default: the one its keys and shapes"
                + " show, else resnet18)")
        String arch;

        @Option(names = "--key-prefix", description = "a prefix to strip from the keys, e.g. backbone.")
        String keyPrefix;

        @CommandLine.Mixin
        JsonMixin output;

        @CommandLine.Spec
        CommandLine.Model.CommandSpec spec;

        @Override
        public Integer call() {
            Checkpoint ckpt = Checkpoints.read(source);
            KeyMapping mapping = KeyMapping.of(keyPrefix, java.util.List.of());
            Optional<ArchitectureRecognizer.Recognized> recognized = ArchitectureRecognizer.recognize(ckpt, mapping);
            Architecture a = arch != null ? Architectures.parse(arch)
                    : recognized.map(ArchitectureRecognizer.Recognized::arch).orElse(ResNetArch.RESNET18);
            int classes = ckpt.headClasses(a.headName()).orElse(1000);
            Engines.pytorch();
            LoadReport report;
            try (NDManager m = NDManager.newBaseManager()) {
                Network net = a.create(classes).initialize(m);
                report = WeightLoader.plan(net, ckpt, new WeightLoader.Options(mapping, true, false));
            }
            PrintWriter out = spec.commandLine().getOut();
            if (output.json()) {
                Map<String, Object> o = new LinkedHashMap<>();
                o.put("file", ckpt.source().toString());
                o.put("format", ckpt.format().name());
                o.put("tensors", ckpt.tensors().size());
                o.put("parameters", ckpt.parameterValues());
                o.put("buffer_values", ckpt.bufferValues());
                o.put("optimizer_values", ckpt.optimizerValues());
                o.put("elements", ckpt.parameterCount());
                o.put("dtypes", ckpt.dtypeCounts());
                o.put("metadata", ckpt.metadata());
                o.put("recognized", recognized.map(r -> Map.of("arch", r.arch().configName(), "classes",
                        r.classes())).orElse(null));
                o.put("arch", a.configName());
                o.put("classes", classes);
                o.put("mapping", report);
                o.put("clean", report.isClean());
                out.println(JsonOutput.write(o));
            } else {
                out.printf("file:     %s%n", ckpt.source());
                out.printf("format:   %s%n", ckpt.format());
                out.printf("tensors:  %d: %,d parameters, %,d buffer values%s%n", ckpt.tensors().size(),
                        ckpt.parameterValues(), ckpt.bufferValues(), ckpt.optimizerValues() == 0 ? ""
                                : String.format(", %,d optimizer state values", ckpt.optimizerValues()));
                out.printf("dtypes:   %s%n", ckpt.dtypeSummary());
                if (!ckpt.metadata().isEmpty()) {
                    out.printf("metadata: %s%n", ckpt.metadata().keySet());
                }
                out.printf("recognized: %s%n", recognized.map(ArchitectureRecognizer.Recognized::describe)
                        .orElse("no known architecture (its keys and shapes fit none of " + Architectures.names().size()
                                + "; see --arch and --key-prefix)"));
                out.printf("mapping onto %s (%d classes):%n", a.configName(), classes);
                out.print(report.summary());
                out.println(report.isClean() ? "result: loads cleanly" : "result: does NOT load strictly ("
                        + report.problems().size() + " problems)");
            }
            out.flush();
            return report.isClean() ? 0 : dev.finetune.ErrorKind.CHECKPOINT.exitCode();
        }
    }
}
