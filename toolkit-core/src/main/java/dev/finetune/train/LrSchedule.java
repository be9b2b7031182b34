package dev.finetune.train;

import java.util.List;

/**
 * The learning rate at every optimizer step, as a pure function of the step, so a resumed run continues on exactly
 * the same curve. Warm-up (linear from 0) composes with step, cosine and constant; one-cycle has its own rise.
 */
public final class LrSchedule {
    private final Spec config;
    private final double baseLr;
    private final long stepsPerEpoch;
    private final long totalSteps;
    private final long warmupSteps;

    /**
     * Which schedule, with its parameters (PyTorch's names and defaults).
     *
     * @param name constant, step, cosine or onecycle
     * @param warmupEpochs linear warm-up from 0 over this many epochs (constant, step, cosine), >= 0
     * @param stepSize step: epochs between decays, >= 1
     * @param gamma step: the decay factor, in (0, 1]
     * @param minLr cosine: the floor, >= 0
     * @param maxLrMult onecycle: the peak as a multiple of the base lr, > 0
     * @param pctStart onecycle: the fraction of steps rising, in (0, 1)
     */
    public record Spec(String name, double warmupEpochs, int stepSize, double gamma, double minLr, double maxLrMult,
            double pctStart) {
        public Spec {
            if (!List.of("constant", "step", "cosine", "onecycle").contains(name)) {
                throw new IllegalArgumentException("unknown schedule '" + name
                        + "'; choose constant, step, cosine or onecycle");
            }
            if (!(warmupEpochs >= 0 && warmupEpochs < Double.POSITIVE_INFINITY)) {
                throw new IllegalArgumentException("warm-up epochs must be a number >= 0, found " + warmupEpochs);
            }
            if (name.equals("step") && stepSize < 1) {
                throw new IllegalArgumentException("the step schedule needs a step size >= 1, found " + stepSize);
            }
            if (!(gamma > 0 && gamma <= 1) || !(minLr >= 0 && minLr < Double.POSITIVE_INFINITY)
                    || !(maxLrMult > 0 && maxLrMult < Double.POSITIVE_INFINITY) || !(pctStart > 0 && pctStart < 1)) {
                throw new IllegalArgumentException("schedule parameters out of range: gamma " + gamma + ", min lr "
                        + minLr + ", max lr mult " + maxLrMult + ", pct start " + pctStart);
            }
        }

        /** A constant learning rate. */
        public static Spec constant() {
            return new Spec("constant", 0, 1, 0.1, 0, 1, 0.3);
        }

        /** Cosine annealing to {@code minLr}, after {@code warmupEpochs} of linear warm-up. */
        public static Spec cosine(double warmupEpochs, double minLr) {
            return new Spec("cosine", warmupEpochs, 1, 0.1, minLr, 1, 0.3);
        }

        /** Multiply by {@code gamma} every {@code stepSize} epochs, after {@code warmupEpochs} of warm-up. */
        public static Spec step(double warmupEpochs, int stepSize, double gamma) {
            return new Spec("step", warmupEpochs, stepSize, gamma, 0, 1, 0.3);
        }

        /** torch's OneCycleLR to {@code maxLrMult} × the base lr, rising for {@code pctStart} of the steps. */
        public static Spec oneCycle(double maxLrMult, double pctStart) {
            return new Spec("onecycle", 0, 1, 0.1, 0, maxLrMult, pctStart);
        }
    }

    public LrSchedule(Spec config, double baseLr, long stepsPerEpoch, int epochs) {
        this.config = config;
        this.baseLr = baseLr;
        this.stepsPerEpoch = Math.max(1, stepsPerEpoch);
        this.totalSteps = this.stepsPerEpoch * epochs;
        this.warmupSteps = Math.round(config.warmupEpochs() * this.stepsPerEpoch);
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
                yield baseLr * Math.pow(config.gamma(), epoch / config.stepSize());
            }
            case "cosine" -> {
                double min = config.minLr();
                long span = Math.max(1, totalSteps - warmupSteps);
                double t = Math.min(1.0, (double) (step - warmupSteps) / span);
                yield min + (baseLr - min) * 0.5 * (1 + Math.cos(Math.PI * t));
            }
            default -> baseLr;
        };
    }

    /** torch's OneCycleLR (cosine annealing, div_factor 25, final_div_factor 1e4). */
    private double oneCycle(long step) {
        double max = baseLr * config.maxLrMult();
        double initial = max / 25;
        double min = initial / 1e4;
        double pct = config.pctStart();
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
