package dev.finetune.cli;

import dev.finetune.config.ConfigLoader;
import dev.finetune.run.FeaturesJob;
import dev.finetune.store.FeatureStore;
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

/** {@code finetune features -c X.yaml --out DIR}: the frozen prefix's outputs as a Parquet feature store. */
@Command(name = "features", mixinStandardHelpOptions = true,
        description = "Run the config's frozen prefix once over its training and validation images and write the"
                + " outputs as a feature store (Parquet + manifest.json) that train.feature_store reads back.")
final class FeaturesCommand implements Callable<Integer> {
    @Option(names = {"-c", "--config"}, required = true, description = "experiment YAML")
    Path config;

    @Option(names = "--set", description = "edit the config: KEY=VALUE (repeatable)")
    List<String> sets = new ArrayList<>();

    @Option(names = "--out", required = true, description = "the store's folder")
    Path out;

    @Option(names = "--cut", description = "the last stored stage (default: the config's whole frozen prefix)")
    String cut;

    @CommandLine.Mixin
    JsonMixin output;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        ConfigLoader.Loaded loaded = ConfigLoader.load(config, sets);
        FeaturesJob.Outcome o = FeaturesJob.run(loaded, cut, out);
        PrintWriter pw = spec.commandLine().getOut();
        if (output.json()) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("store", out.toString());
            m.put("cut", o.cut());
            m.put("enters_at_stage", o.entersAtStage());
            List<Map<String, Object>> splits = new ArrayList<>();
            for (FeatureStore.SplitInfo s : o.splits()) {
                splits.add(Map.of("split", s.split(), "rows", s.rows(), "bytes", s.bytes()));
            }
            m.put("splits", splits);
            m.put("seconds", o.seconds());
            pw.println(JsonOutput.write(m));
        } else {
            pw.printf(Locale.ROOT, "stored the output of %s (the input of stage %d) in %s, %.1f s%n", o.cut(),
                    o.entersAtStage(), out, o.seconds());
            for (FeatureStore.SplitInfo s : o.splits()) {
                pw.printf(Locale.ROOT, "  %-5s %,8d rows  %,.1f MiB%n", s.split(), s.rows(), s.bytes() / 1048576.0);
            }
            pw.printf("train from it with: --set train.feature_store=%s%n", out.toAbsolutePath());
        }
        pw.flush();
        return 0;
    }
}
