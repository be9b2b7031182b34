package dev.finetune.cli;

import dev.finetune.config.ConfigLoader;
import dev.finetune.inspect.InspectReport;
import dev.finetune.run.Assembler;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine;

/** {@code finetune inspect --config X.yaml}: what trains, what is frozen, and why. */
@Command(name = "inspect", mixinStandardHelpOptions = true,
        description = "Every parameter with its fate (trainable, rule, BN mode, lr, weight decay, in optimizer),"
                + " totals, and the backward frontier.")
final class InspectCommand implements Callable<Integer> {
    @Option(names = {"-c", "--config"}, required = true, description = "experiment YAML")
    Path config;

    @Option(names = "--set", description = "edit the config: KEY=VALUE (repeatable), e.g. optimizer.lr=0.003")
    List<String> sets = new ArrayList<>();

    @Option(names = "--classes", description = "class count for head.classes: auto (default: from the data, if"
            + " any)")
    Integer classes;

    @CommandLine.Mixin
    JsonMixin output;

    @Option(names = "--epoch", paramLabel = "N", description = "the state during epoch N (default 1): after the"
            + " train.unfreeze steps with at_epoch <= N, each in its own optimizer group")
    int epoch = 1;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        ConfigLoader.Loaded loaded = ConfigLoader.load(config, sets);
        Integer dataClasses = classes;
        if (dataClasses == null && loaded.config().data() != null) {
            dataClasses = Assembler.data(loaded).numClasses();
        }
        if (classes != null && classes < 1) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--classes must be >= 1, found " + classes);
        }
        if (epoch < 1) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--epoch must be >= 1, found " + epoch);
        }
        InspectReport report = Assembler.inspect(loaded, dataClasses, epoch);
        PrintWriter out = spec.commandLine().getOut();
        out.print(output.json() ? JsonOutput.write(report) + System.lineSeparator() : report.toText());
        out.flush();
        return 0;
    }
}
