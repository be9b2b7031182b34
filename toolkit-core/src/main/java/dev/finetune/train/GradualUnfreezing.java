package dev.finetune.train;

import dev.finetune.policy.FreezePolicy;
import java.util.List;
import java.util.Objects;

/**
 * Gradual unfreezing as a listener that owns its steps, in the spirit of Lightning's {@code BaseFinetuning}: at the
 * start of an epoch, each step due is applied with {@link FineTuner#unfreeze} (a train rule, and the parameters it
 * makes trainable in their own optimizer group with the step's learning-rate multiplier, as PyTorch's
 * {@code add_param_group}). How many steps are in effect is kept in {@link TrainState#unfreezeApplied()}, so a
 * checkpoint carries it; a resumed run's fresh model gets the same steps again, in the same order, before its
 * optimizer state is restored.
 */
public final class GradualUnfreezing implements TrainingListener {
    /**
     * One step.
     *
     * @param atEpoch the first epoch (1-based) in which the names train
     * @param rule the train rule (its {@code where} names the step in reports, e.g. {@code train.unfreeze[0]})
     * @param lrMult the learning-rate multiplier of the group the newly trainable parameters join, > 0
     */
    public record Step(int atEpoch, FreezePolicy.Rule rule, double lrMult) {
        public Step {
            if (atEpoch < 1) {
                throw new IllegalArgumentException("an unfreeze step starts at epoch >= 1, found " + atEpoch);
            }
            Objects.requireNonNull(rule, "rule");
            if (!rule.train()) {
                throw new IllegalArgumentException(rule.where() + ": an unfreeze step needs a train rule");
            }
            if (!(lrMult > 0 && lrMult < Double.POSITIVE_INFINITY)) {
                throw new IllegalArgumentException(rule.where() + ": lr_mult must be > 0, found " + lrMult);
            }
        }
    }

    private final List<Step> steps;
    /** Steps applied to this run's model (a resumed run starts again at 0 and catches up). */
    private int appliedHere;

    public GradualUnfreezing(List<Step> steps) {
        this.steps = List.copyOf(steps);
    }

    public List<Step> steps() {
        return steps;
    }

    @Override
    public void onEpochBegin(TrainContext ctx, int epoch) {
        boolean changed = false;
        while (appliedHere < steps.size() && steps.get(appliedHere).atEpoch() <= epoch) {
            Step s = steps.get(appliedHere);
            ctx.fineTuner().unfreeze(s.rule(), s.lrMult());
            appliedHere++;
            changed = true;
        }
        if (changed || ctx.state().unfreezeApplied() != appliedHere) {
            ctx.setState(ctx.state().withUnfreezeApplied(appliedHere));
        }
    }

    /**
     * Applies, to a freshly built model, the steps in effect by {@code epoch} (what {@code inspect --epoch} shows).
     *
     * @return how many were applied
     */
    public static int applyUpTo(FineTuner ft, List<Step> steps, int epoch) {
        int n = 0;
        for (Step s : steps) {
            if (s.atEpoch() > epoch) {
                break;
            }
            ft.unfreeze(s.rule(), s.lrMult());
            n++;
        }
        return n;
    }
}
