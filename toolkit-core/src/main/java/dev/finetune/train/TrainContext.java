package dev.finetune.train;

import java.util.List;

/**
 * What listeners see of a run: the model, the data, the loop's settings, the state, and a way to ask the loop to stop.
 * Nothing of the YAML layer: a program that builds a {@link Trainer} from objects sees the same context.
 */
public final class TrainContext {
    private final FineTuner fineTuner;
    private final TrainingData data;
    private final Trainer.Settings settings;
    private TrainState state;
    private String stopReason;
    private int frozenVerified;
    private boolean featureCacheUsed;
    private double cacheBuildSeconds;
    private WeightEma ema;

    TrainContext(FineTuner fineTuner, TrainingData data, Trainer.Settings settings, TrainState state) {
        this.fineTuner = fineTuner;
        this.data = data;
        this.settings = settings;
        this.state = state;
    }

    /** The loop's settings: epochs, batch size, seed, schedule. */
    public Trainer.Settings settings() {
        return settings;
    }

    /** The model, its plan and its optimizer. */
    public FineTuner fineTuner() {
        return fineTuner;
    }

    /** Whether the run has a validation set (a val/ folder, data.val_split, or IDX test images). */
    public boolean hasValidation() {
        return data.val() != null && data.val().size() > 0;
    }

    /** The training and validation data. */
    public TrainingData data() {
        return data;
    }

    public List<String> classNames() {
        return data.classNames();
    }

    /** Where the run is: epochs, steps, best value, unfreeze position. */
    public TrainState state() {
        return state;
    }

    /** Replaces the state (listeners that keep state in it: early stopping, best checkpoint, unfreezing). */
    public void setState(TrainState state) {
        this.state = state;
    }

    /** Asks the loop to end after this epoch (early stopping). */
    public void requestStop(String reason) {
        this.stopReason = reason;
    }

    /** Why a listener asked the loop to stop, or null. */
    public String stopReason() {
        return stopReason;
    }

    /** Frozen tensors found bit-identical at the last check. */
    public int frozenVerified() {
        return frozenVerified;
    }

    void setFrozenVerified(int n) {
        frozenVerified = n;
    }

    /** Whether any epoch trained from cached prefix features. */
    public boolean featureCacheUsed() {
        return featureCacheUsed;
    }

    void setFeatureCacheUsed() {
        featureCacheUsed = true;
    }

    /** Seconds spent running the frozen prefix once over the data to fill the feature cache. */
    public double cacheBuildSeconds() {
        return cacheBuildSeconds;
    }

    void addCacheBuildSeconds(double s) {
        cacheBuildSeconds += s;
    }

    /** The weight EMA of this run, or null. */
    public WeightEma ema() {
        return ema;
    }

    void setEma(WeightEma ema) {
        this.ema = ema;
    }
}
