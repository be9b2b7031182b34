package dev.finetune.run;

import dev.finetune.config.ConfigLoader;
import dev.finetune.config.ExperimentConfig;
import dev.finetune.io.AtomicFiles;
import dev.finetune.report.Plots;
import dev.finetune.train.FineTuner;
import dev.finetune.train.LrFinder;
import dev.finetune.train.TrainingData;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Locale;

/**
 * {@code finetune lr-find}: the learning-rate range test on the config's model, policy, optimizer and data, on a
 * fine-tuner built for the test and thrown away. Writes {@code lr_find.csv} and {@code lr_find.png} into its own
 * folder; the config's run folder is never touched.
 */
public final class LrFindJob {
    private LrFindJob() {}

    /** The test's result and where its files are. */
    public record Outcome(LrFinder.Result result, Path csv, Path plot) {}

    public static Outcome run(ConfigLoader.Loaded loaded, Path outDir, double minLr, double maxLr, int steps) {
        ExperimentConfig c = loaded.config();
        TrainingData data = Assembler.data(loaded);
        LrFinder.Result r;
        try (FineTuner ft = Assembler.fineTuner(loaded, Assembler.checkpoint(loaded), data)) {
            r = LrFinder.run(ft, data, c.train().batchSize(), c.train().seed(), minLr, maxLr, steps);
        }
        StringBuilder csv = new StringBuilder("step,lr,loss,smoothed_loss\n");
        for (int i = 0; i < r.lrs().size(); i++) {
            csv.append(String.format(Locale.ROOT, "%d,%s,%s,%s%n", i + 1, r.lrs().get(i), r.losses().get(i),
                    r.smoothed().get(i)));
        }
        Path csvFile = outDir.resolve("lr_find.csv");
        AtomicFiles.write(csvFile, out -> out.write(csv.toString().getBytes(StandardCharsets.UTF_8)));
        Path plot = outDir.resolve("lr_find.png");
        Plots.lrFind(r.lrs(), r.smoothed(), r.steepest(), plot);
        return new Outcome(r, csvFile, plot);
    }
}
