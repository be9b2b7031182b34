package dev.finetune.cli;

import dev.finetune.config.ConfigLoader;
import dev.finetune.config.ConfigReference;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code finetune config --defaults [-c X.yaml]} and {@code finetune config --reference}. */
@Command(name = "config", mixinStandardHelpOptions = true,
        description = "Print a config with every default filled in (--defaults), or the reference of every key"
                + " (--reference, the text of docs/config.md).")
final class ConfigCommand implements Callable<Integer> {
    @Option(names = "--defaults", description = "the config (-c, or a minimal one) with every default filled in")
    boolean defaults;

    @Option(names = "--reference", description = "every key with its type, default and meaning (Markdown)")
    boolean reference;

    @Option(names = {"-c", "--config"}, description = "experiment YAML (with --defaults)")
    Path config;

    @Option(names = "--set", description = "edit the config: KEY=VALUE (repeatable)")
    List<String> sets = new ArrayList<>();

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        if (defaults == reference) {
            throw new CommandLine.ParameterException(spec.commandLine(), "choose one of --defaults and --reference");
        }
        PrintWriter out = spec.commandLine().getOut();
        if (reference) {
            out.print(ConfigReference.markdown());
        } else {
            out.print(config == null ? ConfigReference.defaultsYaml(sets) : ConfigReference.defaultsYaml(
                    ConfigLoader.load(config, sets)));
        }
        out.flush();
        return 0;
    }
}
