package dev.finetune.run;

import dev.finetune.ErrorKind;
import dev.finetune.FinetuneException;
import dev.finetune.config.ConfigLoader;
import dev.finetune.store.FeatureStore;
import dev.finetune.train.FineTuner;
import dev.finetune.train.Trainer;
import dev.finetune.train.TrainingData;
import java.nio.file.Path;
import java.util.List;

/**
 * {@code finetune features}: the config's frozen prefix run once over its training and validation images, written as
 * a {@link FeatureStore} that {@code train.feature_store} reads back.
 */
public final class FeaturesJob {
    private FeaturesJob() {}

    /** What was written: the cut's stage name, the stage the features enter at, and each split. */
    public record Outcome(String cut, int entersAtStage, List<FeatureStore.SplitInfo> splits, double seconds) {}

    /**
     * @param cut the stage whose output is stored ({@code layer3}); null for the config's whole frozen prefix
     */
    public static Outcome run(ConfigLoader.Loaded loaded, String cut, Path out) {
        TrainingData data = Assembler.data(loaded);
        try (FineTuner ft = Assembler.fineTuner(loaded, Assembler.checkpoint(loaded), data)) {
            int toStage = prefixEnd(ft, data, cut);
            long t0 = System.nanoTime();
            List<FeatureStore.SplitInfo> splits = FeatureStore.write(ft, data, toStage,
                    loaded.config().train().batchSize(), out);
            return new Outcome(ft.model().stageNames().get(toStage - 1), toStage, splits,
                    (System.nanoTime() - t0) / 1e9);
        }
    }

    /**
     * The stage the stored features enter at: after {@code cut}, or after the config's whole frozen prefix when
     * {@code cut} is null; refused when the prefix is not a fixed function of the image.
     */
    public static int prefixEnd(FineTuner ft, TrainingData data, String cut) {
        int frontier = Trainer.deterministicPrefixEnd(ft, data, "finetune features");
        int toStage = frontier;
        if (cut != null) {
            List<String> names = ft.model().stageNames();
            int k = names.indexOf(cut);
            if (k < 0 || k >= names.size() - 1) {
                throw new FinetuneException(ErrorKind.USAGE, "--cut '" + cut + "' is not a stage before the"
                        + " head; stages: " + names.subList(0, names.size() - 1));
            }
            if (k + 1 > frontier) {
                throw new FinetuneException(ErrorKind.USAGE, "--cut '" + cut + "' is past the frozen prefix,"
                        + " which ends at " + names.get(frontier - 1) + " (" + names.get(frontier)
                        + " trains); give --cut " + names.get(frontier - 1) + " or earlier");
            }
            toStage = k + 1;
        }
        return toStage;
    }
}
