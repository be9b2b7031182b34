package dev.finetune.optim;

import dev.finetune.ConfigException;
import java.util.List;
import java.util.Locale;

/**
 * What the {@code optimizer:} section of a config says. PyTorch's defaults where the section is silent.
 *
 * @param name sgd, adam or adamw
 * @param lr base learning rate
 * @param momentum SGD momentum
 * @param nesterov SGD Nesterov momentum
 * @param dampening SGD dampening
 * @param weightDecay L2 (sgd, adam) or decoupled (adamw) decay
 * @param beta1 Adam beta1
 * @param beta2 Adam beta2
 * @param eps Adam epsilon
 * @param decayNormAndBias apply weight decay to biases and norm parameters too (off by default, as timm does)
 * @param groups parameter groups by pattern; the last matching group wins
 * @param layerDecay layer-wise learning-rate decay, per stage as timm's {@code layer_decay} is per block: the head
 *     trains at the group's rate, the last stage at {@code layerDecay} times it, the one before at its square …
 *     (1 = off)
 */
public record OptimizerSettings(
        String name,
        double lr,
        double momentum,
        boolean nesterov,
        double dampening,
        double weightDecay,
        double beta1,
        double beta2,
        double eps,
        boolean decayNormAndBias,
        List<GroupSettings> groups,
        double layerDecay) {

    /** Without layer-wise decay (every stage at the base rate). */
    public OptimizerSettings(String name, double lr, double momentum, boolean nesterov, double dampening,
            double weightDecay, double beta1, double beta2, double eps, boolean decayNormAndBias,
            List<GroupSettings> groups) {
        this(name, lr, momentum, nesterov, dampening, weightDecay, beta1, beta2, eps, decayNormAndBias, groups, 1.0);
    }

    private static final ConfigException.Part OPT = ConfigException.Part.OPTIMIZER;

    public OptimizerSettings {
        name = name == null ? "sgd" : name.toLowerCase(Locale.ROOT);
        groups = groups == null ? List.of() : List.copyOf(groups);
        if (!(layerDecay > 0 && layerDecay <= 1)) {
            throw new ConfigException(OPT, "layer_decay", "must be in (0, 1] (1 = off), found " + layerDecay);
        }
        if (!List.of("sgd", "adam", "adamw").contains(name)) {
            throw new ConfigException(OPT, "name", "unknown optimizer '" + name + "'; choose sgd, adam or adamw");
        }
        positive("lr", lr);
        if (!(momentum >= 0 && momentum < 1)) {
            throw new ConfigException(OPT, "momentum", "must be in [0, 1), found " + momentum);
        }
        if (nesterov && (momentum == 0 || dampening != 0)) {
            throw new ConfigException(OPT, "nesterov", "Nesterov needs momentum > 0 and dampening 0 (as torch.optim.SGD)");
        }
        if (!(weightDecay >= 0) || Double.isInfinite(weightDecay)) {
            throw new ConfigException(OPT, "weight_decay", "must be >= 0, found " + weightDecay);
        }
        if (!(beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1)) {
            throw new ConfigException(OPT, "betas", "each must be in [0, 1), found [" + beta1 + ", " + beta2 + "]");
        }
        positive("eps", eps);
        for (int i = 0; i < groups.size(); i++) {
            GroupSettings g = groups.get(i);
            if (g.lrMult() != null && !(g.lrMult() > 0 && g.lrMult() < Double.POSITIVE_INFINITY)) {
                throw new ConfigException(OPT, "groups[" + i + "].lr_mult", "must be > 0, found " + g.lrMult()
                        + " (to stop a group from training, freeze it in the policy instead)");
            }
            if (g.weightDecay() != null && !(g.weightDecay() >= 0)) {
                throw new ConfigException(OPT, "groups[" + i + "].weight_decay", "must be >= 0, found " + g.weightDecay());
            }
        }
    }

    /** SGD with the given learning rate and momentum, everything else PyTorch's default. */
    public static OptimizerSettings sgd(double lr, double momentum) {
        return new OptimizerSettings("sgd", lr, momentum, false, 0, 0, 0.9, 0.999, 1e-8, false, List.of());
    }

    /** Adam / AdamW with PyTorch's default betas and eps. */
    public static OptimizerSettings adam(String name, double lr, double weightDecay) {
        return new OptimizerSettings(name, lr, 0, false, 0, weightDecay, 0.9, 0.999, 1e-8, false, List.of());
    }

    private static void positive(String where, double v) {
        if (!(v > 0) || Double.isInfinite(v)) {
            throw new ConfigException(OPT, where, "must be > 0, found " + v);
        }
    }


    /**
     * A parameter group: {@code {match: "layer4.*", lr_mult: 0.1, weight_decay: 0}}.
     *
     * @param match name pattern (glob, module name or re:)
     * @param lrMult learning-rate multiplier, null for 1
     * @param weightDecay override, null to keep the optimizer's
     */
    public record GroupSettings(String match, Double lrMult, Double weightDecay) {}
}
