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
 * @param bestEpoch the epoch whose checkpoint is {@code best.safetensors} (0: none yet)
 * @param epochLossSum after a mid-epoch stop, the sum of the losses of the {@code batchesIntoEpoch} batches done, so
 *     that the resumed epoch's mean loss covers them too
 */
public record TrainState(
        int epochsCompleted,
        long globalStep,
        int batchesIntoEpoch,
        int unfreezeApplied,
        double best,
        int epochsWithoutImprovement,
        int seed,
        double earlyStoppingBest,
        int bestEpoch,
        double epochLossSum) {

    /** A run that has not started. */
    public static TrainState start(int seed) {
        return new TrainState(0, 0, 0, 0, Double.NaN, 0, seed, Double.NaN, 0, 0);
    }

    /** This state with the position changed (and no partial epoch loss). */
    public TrainState at(int epochsCompleted, long globalStep, int batchesIntoEpoch) {
        return new TrainState(epochsCompleted, globalStep, batchesIntoEpoch, unfreezeApplied, best,
                epochsWithoutImprovement, seed, earlyStoppingBest, bestEpoch, 0);
    }

    /** This state with the loss sum of the batches done in a stopped epoch. */
    public TrainState withEpochLossSum(double sum) {
        return new TrainState(epochsCompleted, globalStep, batchesIntoEpoch, unfreezeApplied, best,
                epochsWithoutImprovement, seed, earlyStoppingBest, bestEpoch, sum);
    }

    /** This state with another unfreeze position. */
    public TrainState withUnfreezeApplied(int n) {
        return new TrainState(epochsCompleted, globalStep, batchesIntoEpoch, n, best, epochsWithoutImprovement, seed,
                earlyStoppingBest, bestEpoch, epochLossSum);
    }

    /** This state with a new best-model value, reached in {@code epoch}. */
    public TrainState withBest(double value, int epoch) {
        return new TrainState(epochsCompleted, globalStep, batchesIntoEpoch, unfreezeApplied, value,
                epochsWithoutImprovement, seed, earlyStoppingBest, epoch, epochLossSum);
    }

    /** This state with new early-stopping bookkeeping. */
    public TrainState withEarlyStopping(double bestValue, int epochsWithout) {
        return new TrainState(epochsCompleted, globalStep, batchesIntoEpoch, unfreezeApplied, best, epochsWithout,
                seed, bestValue, bestEpoch, epochLossSum);
    }
}
