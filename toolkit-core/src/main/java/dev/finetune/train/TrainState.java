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
 * @param earlyStoppingBest the best value of the early-stopping metric so far (NaN before the first)
 */
public record TrainState(
        int epochsCompleted,
        long globalStep,
        int batchesIntoEpoch,
        int unfreezeApplied,
        double best,
        int epochsWithoutImprovement,
        int seed,
        double earlyStoppingBest) {

    /** A run that has not started. */
    public static TrainState start(int seed) {
        return new TrainState(0, 0, 0, 0, Double.NaN, 0, seed, Double.NaN);
    }

    /** This state with the position changed. */
    public TrainState at(int epochsCompleted, long globalStep, int batchesIntoEpoch) {
        return new TrainState(epochsCompleted, globalStep, batchesIntoEpoch, unfreezeApplied, best,
                epochsWithoutImprovement, seed, earlyStoppingBest);
    }

    /** This state with another unfreeze position. */
    public TrainState withUnfreezeApplied(int n) {
        return new TrainState(epochsCompleted, globalStep, batchesIntoEpoch, n, best, epochsWithoutImprovement, seed,
                earlyStoppingBest);
    }

    /** This state with a new best-model value. */
    public TrainState withBest(double value) {
        return new TrainState(epochsCompleted, globalStep, batchesIntoEpoch, unfreezeApplied, value,
                epochsWithoutImprovement, seed, earlyStoppingBest);
    }

    /** This state with new early-stopping bookkeeping. */
    public TrainState withEarlyStopping(double bestValue, int epochsWithout) {
        return new TrainState(epochsCompleted, globalStep, batchesIntoEpoch, unfreezeApplied, best, epochsWithout,
                seed, bestValue);
    }
}
