package dev.finetune.run;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.finetune.ErrorKind;
import dev.finetune.FinetuneException;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;

/**
 * A finished run's {@code summary.json}: written by {@link TrainJob}, read back by {@code experiment} and by anyone
 * who compares runs. Keys are snake_case; fields a run did not measure are null.
 *
 * @param epochsCompleted whole epochs done
 * @param globalStep optimizer steps done
 * @param lastEpoch the last epoch's number
 * @param trainLoss the last epoch's mean training loss
 * @param valLoss the last epoch's validation loss, or null without validation
 * @param valTop1 the last epoch's validation top-1
 * @param valTop5 the last epoch's validation top-k (k = min(5, classes))
 * @param imagesPerSecond the last epoch's training throughput
 * @param bestMetric the metric that picked the best checkpoint (train_loss when there is no validation)
 * @param bestValue its best value, or null
 * @param bestEpoch the epoch of the best checkpoint, or null
 * @param bestCheckpoint the best checkpoint's path relative to the run folder, or null
 * @param validation whether the run had a validation set
 * @param stoppedEarly why early stopping ended the run, or null
 * @param frozenTensorsBitIdentical frozen tensors verified bit-identical at the end
 * @param featureCacheUsed whether any epoch trained from cached prefix features
 * @param featureCacheBuildSeconds seconds spent filling the feature cache
 * @param skippedImages files skipped under {@code on_bad_image: skip}, with why
 * @param wallSeconds the whole run's wall time: for a run stopped and resumed, the sum over its segments
 *     ({@link RunTime})
 * @param peakRssBytes the run's peak resident memory: for a resumed run, the highest of its segments'
 * @param segments how many processes trained the run (1 unless it was resumed; a run resumed from a checkpoint
 *     written before checkpoints kept these figures counts only its last process)
 * @param policy the freeze policy at the end of the run, as {@code inspect} describes it
 * @param trainableParams parameters trainable at the end of the run
 */
public record RunSummary(
        int epochsCompleted,
        long globalStep,
        Integer lastEpoch,
        Double trainLoss,
        Double valLoss,
        Double valTop1,
        Double valTop5,
        Double imagesPerSecond,
        String bestMetric,
        Double bestValue,
        Integer bestEpoch,
        String bestCheckpoint,
        boolean validation,
        String stoppedEarly,
        int frozenTensorsBitIdentical,
        boolean featureCacheUsed,
        double featureCacheBuildSeconds,
        Map<String, String> skippedImages,
        double wallSeconds,
        long peakRssBytes,
        int segments,
        String policy,
        long trainableParams) {

    static final ObjectMapper JSON = new ObjectMapper()
            .setPropertyNamingStrategy(PropertyNamingStrategies.SNAKE_CASE)
            .enable(SerializationFeature.INDENT_OUTPUT)
            .disable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES);

    /** The file name in a run folder. */
    public static final String FILE = "summary.json";

    /** Reads {@code runDir/summary.json}. */
    public static RunSummary read(Path runDir) {
        try {
            return JSON.readValue(runDir.resolve(FILE).toFile(), RunSummary.class);
        } catch (IOException e) {
            throw new FinetuneException(ErrorKind.OUTPUT, "cannot read " + runDir.resolve(FILE) + ": " + e.getMessage());
        }
    }

    /** As JSON. */
    public String toJson() {
        try {
            return JSON.writeValueAsString(this);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }
}
