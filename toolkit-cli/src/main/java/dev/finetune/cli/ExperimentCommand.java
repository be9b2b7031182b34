package dev.finetune.cli;

import dev.finetune.experiment.ExperimentRunner;
import dev.finetune.io.AtomicFiles;
import dev.finetune.train.StopSignal;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code finetune experiment DIR [--out runs/exp] [--set k=v] [--resume]}: run every config, print one results table.
 */
@Command(name = "experiment", mixinStandardHelpOptions = true,
        description = "Run every experiment config in a folder (each in its own JVM) and print one results table.")
final class ExperimentCommand implements Callable<Integer> {
    @Parameters(paramLabel = "DIR", description = "folder of experiment YAML files")
    Path dir;

    @Option(names = "--out", defaultValue = "runs/experiments", description = "parent of the run directories"
            + " (${DEFAULT-VALUE})")
    Path out;

    @Option(names = "--set", description = "edit every config: KEY=VALUE (repeatable)")
    List<String> sets = new ArrayList<>();

    @Option(names = "--resume", description = "continue a sweep that stopped: runs in --out that finished are kept,"
            + " an interrupted one continues from its last checkpoint with the config it started with, the rest start")
    boolean resume;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        PrintWriter o = spec.commandLine().getOut();
        StopSignal.install("stopping the running experiment at its next step, with a resumable checkpoint");
        var rows = ExperimentRunner.run(dir, out, sets, System.getProperty("java.class.path"),
                FinetuneCli.class.getName(), line -> {
                    o.println(line);
                    o.flush();
                }, resume);
        String table = ExperimentRunner.markdown(rows);
        AtomicFiles.write(out.resolve("results.md"), w -> w.write(table.getBytes(StandardCharsets.UTF_8)));
        o.println();
        o.print(table);
        o.println("(also in " + out.resolve("results.md") + ")");
        o.flush();
        return 0;
    }
}
