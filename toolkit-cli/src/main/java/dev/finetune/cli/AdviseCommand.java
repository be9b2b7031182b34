package dev.finetune.cli;

import dev.finetune.advise.FreezeAdvisor;
import dev.finetune.config.ConfigLoader;
import dev.finetune.run.AdviseJob;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code finetune advise -c X.yaml}: where to stop freezing, from a linear probe at every stage boundary. */
@Command(name = "advise", mixinStandardHelpOptions = true,
        description = "Freeze-depth advisor: computes the features at every stage boundary once, fits a linear probe"
                + " on each (seconds), times a training step frozen through each boundary, and recommends where to"
                + " stop freezing; writes advise.csv, advise.json and advise.png. Never touches the config's run"
                + " folder.")
final class AdviseCommand implements Callable<Integer> {
    @Option(names = {"-c", "--config"}, required = true, description = "experiment YAML")
    Path config;

    @Option(names = "--set", description = "edit the config: KEY=VALUE (repeatable)")
    List<String> sets = new ArrayList<>();

    @Option(names = "--out", description = "folder for the advice files (default: a new temporary folder)")
    Path out;

    @Option(names = "--tolerance", defaultValue = "1.0",
            description = "top-1 points a deeper boundary's probe may lose against the best and still be"
                    + " recommended (${DEFAULT-VALUE})")
    double tolerance;

    @Option(names = "--timing-steps", defaultValue = "3",
            description = "timed training steps per boundary, after one warm-up; the median is reported"
                    + " (${DEFAULT-VALUE})")
    int timingSteps;

    @CommandLine.Mixin
    JsonMixin output;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        if (!(tolerance >= 0 && tolerance <= 100) || timingSteps < 1) {
            throw new CommandLine.ParameterException(spec.commandLine(),
                    "need 0 <= --tolerance <= 100 (top-1 points) and --timing-steps >= 1");
        }
        ConfigLoader.Loaded loaded = ConfigLoader.load(config, sets);
        Path dir = OutputDirs.outOrTemp(out, "finetune-advise");
        AdviseJob.Outcome o = AdviseJob.run(loaded, dir, tolerance / 100, timingSteps);
        FreezeAdvisor.Advice a = o.advice();
        PrintWriter pw = spec.commandLine().getOut();
        if (output.json()) {
            Map<String, Object> m = AdviseJob.toMap(a);
            m.put("csv", o.csv().toString());
            m.put("json", o.json().toString());
            m.put("plot", o.plot().toString());
            pw.println(JsonOutput.write(m));
        } else {
            pw.printf(Locale.ROOT, "linear probes on %d training images, scored on %d (%s); steps at batch %d, %dx%d%n",
                    a.trainImages(), a.valImages(), a.valSource(), a.batchSize(), a.imageSize(), a.imageSize());
            pw.printf(Locale.ROOT, "%-16s %9s %12s %10s %11s %14s %14s%n", "frozen through", "features",
                    "trainable", "probe val", "probe train", "step (images)", "step (cached)");
            for (int i = 0; i < a.cuts().size(); i++) {
                FreezeAdvisor.Cut k = a.cuts().get(i);
                pw.printf(Locale.ROOT, "%-16s %9d %12s %9.2f%% %10.2f%% %11.1f ms %11.1f ms%s%n", k.stage(),
                        k.featureDim(), params(k.trainableParameters()), 100 * k.probe().valAccuracy(),
                        100 * k.probe().trainAccuracy(), k.stepMsImages(), k.stepMsCached(),
                        i == a.recommended() ? "  <- recommended" : "");
            }
            pw.printf(Locale.ROOT, "%-16s %9s %12s %10s %11s %11.1f ms%n", "nothing", "", params(
                    a.fullTrainableParameters()), "", "", a.fullStepMs());
            pw.println("advice: " + a.verdict());
            pw.printf(Locale.ROOT, "took %.1f s features, %.1f s probes, %.1f s timing%n", a.featureSeconds(),
                    a.probeSeconds(), a.timingSeconds());
            pw.printf(Locale.ROOT, "plot: %s%ncsv:  %s%njson: %s%n", o.plot(), o.csv(), o.json());
        }
        pw.flush();
        return 0;
    }

    private static String params(long n) {
        return n >= 1_000_000 ? String.format(Locale.ROOT, "%.2f M", n / 1e6)
                : String.format(Locale.ROOT, "%.1f k", n / 1e3);
    }
}
