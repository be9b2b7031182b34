package dev.finetune.cli;

import dev.finetune.config.ConfigLoader;
import dev.finetune.run.RunSummary;
import dev.finetune.run.TrainJob;
import dev.finetune.train.StopSignal;
import dev.finetune.train.TrainingListener;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine;

/** {@code finetune train --config X.yaml [--set k=v] [--run-dir D] | --resume D}. */
@Command(name = "train", mixinStandardHelpOptions = true,
        description = "Fine-tune as the config says; writes a run directory (config, metrics, plots, checkpoints).")
final class TrainCommand implements Callable<Integer> {
    @CommandLine.ArgGroup(exclusive = true, multiplicity = "1")
    Source source;

    static final class Source {
        @Option(names = {"-c", "--config"}, description = "experiment YAML") Path config;

        @Option(names = "--resume", paramLabel = "RUN_DIR", description = "continue an interrupted run (with --set:"
                + " edits that its config.yaml keeps for the rest of the run)") Path resume;
    }

    @Option(names = "--set", paramLabel = "KEY=VALUE", description = "edit the config (repeatable), e.g."
            + " optimizer.lr=0.003")
    List<String> sets = new ArrayList<>();

    @Option(names = "--run-dir", description = "where to write the run (default runs/<name>-<time>)")
    Path runDir;

    @Option(names = {"-q", "--quiet"}, description = "one line per epoch, no progress bar")
    boolean quiet;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        StopSignal.install();
        boolean bar = !quiet && System.console() != null;
        TrainJob.Result r;
        if (source.resume != null) {
            if (!sets.isEmpty()) {
                out.printf("config: %s edited for the rest of the run: %s%n",
                        source.resume.resolve("config.yaml"), String.join(", ", sets));
                out.flush();
            }
            r = TrainJob.resume(source.resume, sets, List.of(new ProgressListener(out, source.resume, bar)));
        } else {
            ConfigLoader.Loaded loaded = ConfigLoader.load(source.config, sets);
            Path dir = runDir != null ? runDir : Path.of("runs", loaded.config().name() + "-"
                    + LocalDateTime.now().format(DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss")));
            r = TrainJob.start(loaded, dir, List.of(new ProgressListener(out, dir, bar)));
        }
        out.printf("done: %s%n", r.runDir());
        RunSummary s = r.summary();
        if (s.bestCheckpoint() != null) {
            out.printf(Locale.ROOT, "best %s: %.4f in epoch %d (%s)%n", s.bestMetric(), s.bestValue(), s.bestEpoch(),
                    s.bestCheckpoint());
        } else {
            out.printf("no best checkpoint: %s was never measured%n", s.bestMetric());
        }
        Path report = r.runDir().resolve(dev.finetune.report.RunReport.FILE);
        if (java.nio.file.Files.exists(report)) {
            out.printf("report: %s%n", report);
        }
        out.flush();
        return 0;
    }
}
