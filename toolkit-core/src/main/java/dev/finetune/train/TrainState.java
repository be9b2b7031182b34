package dev.finetune.train;

/**
 * Where a run is: what a checkpoint needs besides weights and optimizer state to continue exactly.
 *
 * @param epochsCompleted whole epochs done
 * @param globalStep optimizer steps done (the schedule position)
 * @param batchesIntoEpoch batches of epoch {@code epochsCompleted + 1} already done (a mid-epoch stop), else 0
 * @param unfreezeApplied how many {@code train.unfreeze} steps are in effect
 * @param best the best value of the best-model metric so far (NaN before the first validation)
 * @param epochsWithoutImprovement for early stopping
 * @param seed the run's seed
 */
public record TrainState(
        int epochsCompleted,
        long globalStep,
        int batchesIntoEpoch,
        int unfreezeApplied,
        double best,
        int epochsWithoutImprovement,
        int seed) {

    /** A run that has not started. */
    public static TrainState start(int seed) {
        return new TrainState(0, 0, 0, 0, Double.NaN, 0, seed);
    }
}
