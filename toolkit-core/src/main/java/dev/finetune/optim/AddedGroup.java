package dev.finetune.optim;

import java.util.List;

/**
 * A parameter group added while training, as PyTorch's {@code optimizer.add_param_group({'params': ps, 'lr': lr})}
 * does when gradual unfreezing makes {@code ps} trainable: these parameters, and only these, get
 * {@code lr = base lr × lrMult}, whatever the config's groups say. Weight decay follows the usual rules.
 *
 * @param name where it comes from, e.g. {@code train.unfreeze[0]}
 * @param lrMult learning-rate multiplier, > 0
 * @param params the parameter names it holds
 */
public record AddedGroup(String name, double lrMult, List<String> params) {
    public AddedGroup {
        if (!(lrMult > 0 && lrMult < Double.POSITIVE_INFINITY)) {
            throw new IllegalArgumentException(name + ": lr_mult must be > 0, found " + lrMult);
        }
        params = List.copyOf(params);
    }
}
