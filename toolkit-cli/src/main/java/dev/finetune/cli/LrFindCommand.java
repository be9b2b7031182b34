package dev.finetune.cli;

import dev.finetune.config.ConfigLoader;
import dev.finetune.run.LrFindJob;
import dev.finetune.train.LrFinder;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code finetune lr-find -c X.yaml}: fastai's learning-rate range test, a plot and a suggested rate. */
@Command(name = "lr-find", mixinStandardHelpOptions = true,
        description = "Learning-rate range test (fastai's lr_find): one step per rate, rates growing exponentially,"
                + " until the smoothed loss diverges; writes lr_find.csv and lr_find.png and suggests a rate. Never"
                + " touches the config's run folder; on a frozen prefix it trains from the feature cache.")
final class LrFindCommand implements Callable<Integer> {
    @Option(names = {"-c", "--config"}, required = true, description = "experiment YAML")
    Path config;

    @Option(names = "--set", description = "edit the config: KEY=VALUE (repeatable)")
    List<String> sets = new ArrayList<>();

    @Option(names = "--out", description = "folder for lr_find.csv and lr_find.png (default: a new temporary folder)")
    Path out;

    @Option(names = "--min-lr", defaultValue = "1e-7", description = "(${DEFAULT-VALUE})")
    double minLr;

    @Option(names = "--max-lr", defaultValue = "10", description = "(${DEFAULT-VALUE})")
    double maxLr;

    @Option(names = "--steps", defaultValue = "100", description = "(${DEFAULT-VALUE})")
    int steps;

    @CommandLine.Mixin
    JsonMixin output;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        if (!(minLr > 0 && maxLr > minLr) || steps < 2) {
            throw new CommandLine.ParameterException(spec.commandLine(),
                    "need 0 < --min-lr < --max-lr and --steps >= 2");
        }
        ConfigLoader.Loaded loaded = ConfigLoader.load(config, sets);
        Path dir = OutputDirs.outOrTemp(out, "finetune-lr-find");
        LrFindJob.Outcome o = LrFindJob.run(loaded, dir, minLr, maxLr, steps);
        LrFinder.Result r = o.result();
        PrintWriter pw = spec.commandLine().getOut();
        if (output.json()) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("suggested_lr", r.steepest());
            m.put("minimum_lr_over_10", r.minimumOver10());
            m.put("steps", r.lrs().size());
            m.put("stopped_early", r.stoppedEarly());
            m.put("feature_cache", r.featureCache());
            m.put("csv", o.csv().toString());
            m.put("plot", o.plot().toString());
            pw.println(JsonOutput.write(m));
        } else {
            pw.printf(Locale.ROOT, "%d steps from %.1e%s%s%n", r.lrs().size(), minLr,
                    r.stoppedEarly() ? ", stopped when the loss diverged" : "",
                    r.featureCache() ? " (feature cache)" : "");
            pw.printf(Locale.ROOT, "suggested lr: %.3g (steepest fall of the loss); minimum/10: %.3g%n", r.steepest(),
                    r.minimumOver10());
            pw.printf(Locale.ROOT, "plot: %s%ncsv:  %s%n", o.plot(), o.csv());
        }
        pw.flush();
        return 0;
    }
}
