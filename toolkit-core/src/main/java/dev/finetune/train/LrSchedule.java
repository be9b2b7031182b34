package dev.finetune.train;

import dev.finetune.config.TrainConfig;

/**
 * The learning rate at every optimizer step, as a pure function of the step, so a resumed run continues on exactly
 * the same curve. Warm-up (linear from 0) composes with step, cosine and constant; one-cycle has its own rise.
 */
public final class LrSchedule {
    private final TrainConfig.ScheduleConfig config;
    private final double baseLr;
    private final long stepsPerEpoch;
    private final long totalSteps;
    private final long warmupSteps;

    public LrSchedule(TrainConfig.ScheduleConfig config, double baseLr, long stepsPerEpoch, int epochs) {
        this.config = config;
        this.baseLr = baseLr;
        this.stepsPerEpoch = Math.max(1, stepsPerEpoch);
        this.totalSteps = this.stepsPerEpoch * epochs;
        double w = config.warmupEpochs() == null ? 0 : config.warmupEpochs();
        this.warmupSteps = Math.round(w * this.stepsPerEpoch);
    }

    /** Learning rate for global step {@code step} (0-based). */
    public double lr(long step) {
        if ("onecycle".equals(config.name())) {
            return oneCycle(step);
        }
        if (step < warmupSteps) {
            return baseLr * (step + 1) / warmupSteps;
        }
        return switch (config.name()) {
            case "step" -> {
                long epoch = step / stepsPerEpoch;
                double gamma = config.gamma() == null ? 0.1 : config.gamma();
                yield baseLr * Math.pow(gamma, epoch / config.stepSize());
            }
            case "cosine" -> {
                double min = config.minLr() == null ? 0 : config.minLr();
                long span = Math.max(1, totalSteps - warmupSteps);
                double t = Math.min(1.0, (double) (step - warmupSteps) / span);
                yield min + (baseLr - min) * 0.5 * (1 + Math.cos(Math.PI * t));
            }
            default -> baseLr;
        };
    }

    /** torch's OneCycleLR (cosine annealing, div_factor 25, final_div_factor 1e4). */
    private double oneCycle(long step) {
        double max = baseLr * (config.maxLrMult() == null ? 1 : config.maxLrMult());
        double initial = max / 25;
        double min = initial / 1e4;
        double pct = config.pctStart() == null ? 0.3 : config.pctStart();
        double up = pct * totalSteps - 1;
        double down = totalSteps - 1;
        if (step <= up) {
            return cosine(initial, max, up <= 0 ? 1 : step / up);
        }
        return cosine(max, min, (step - up) / Math.max(1e-9, down - up));
    }

    private static double cosine(double start, double end, double pct) {
        return end + (start - end) / 2 * (Math.cos(Math.PI * Math.min(1, pct)) + 1);
    }
}
