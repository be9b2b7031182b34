package dev.finetune.config;

import dev.finetune.ConfigException;
import dev.finetune.optim.OptimizerSettings;
import java.util.List;

/**
 * {@code optimizer:} — as {@code torch.optim} names things; PyTorch's defaults where silent.
 *
 * @param name sgd (default), adam, adamw
 * @param lr learning rate (required)
 * @param momentum SGD momentum (default 0)
 * @param nesterov SGD Nesterov
 * @param dampening SGD dampening
 * @param weightDecay weight decay (default 0; adamw's default 0.01)
 * @param betas Adam betas (default [0.9, 0.999])
 * @param eps Adam eps (default 1e-8)
 * @param decayNormAndBias decay biases and norm parameters too (default false)
 * @param groups parameter groups: {@code {match, lr_mult, weight_decay}}
 * @param layerDecay per-stage learning-rate decay (timm's layer_decay over stages): head 1, last stage x, the one
 *     before x², … (default 1: off)
 */
public record OptimizerConfig(
        String name,
        Double lr,
        Double momentum,
        Boolean nesterov,
        Double dampening,
        Double weightDecay,
        List<Double> betas,
        Double eps,
        Boolean decayNormAndBias,
        List<GroupConfig> groups,
        Double layerDecay) {

    /**
     * {@code {match: "layer4.*", lr_mult: 0.1, weight_decay: 0}}.
     *
     * @param match name pattern
     * @param lrMult learning-rate multiplier
     * @param weightDecay weight decay override
     */
    public record GroupConfig(String match, Double lrMult, Double weightDecay) {}

    /** The validated settings; errors carry the YAML path. */
    public OptimizerSettings toSettings() {
        if (lr == null) {
            throw new ConfigException("optimizer.lr", "required (e.g. lr: 0.01)");
        }
        if (betas != null && betas.size() != 2) {
            throw new ConfigException("optimizer.betas", "must be two numbers, e.g. [0.9, 0.999], found " + betas);
        }
        String n = name == null ? "sgd" : name;
        for (int i = 0; groups != null && i < groups.size(); i++) {
            if (groups.get(i) == null) {
                throw new ConfigException("optimizer.groups[" + i + "]",
                        "empty entry; write {match: \"layer4.*\", lr_mult: 0.1}");
            }
        }
        List<OptimizerSettings.GroupSettings> g = groups == null
                ? List.of()
                : groups.stream().map(x -> new OptimizerSettings.GroupSettings(x.match(), x.lrMult(), x.weightDecay()))
                        .toList();
        for (int i = 0; i < g.size(); i++) {
            if (g.get(i).match() == null) {
                throw new ConfigException("optimizer.groups[" + i + "].match", "required (a name pattern)");
            }
        }
        double wd = weightDecay != null ? weightDecay : ("adamw".equalsIgnoreCase(n) ? 0.01 : 0.0);
        return ConfigPaths.build(() -> new OptimizerSettings(
                n,
                lr,
                momentum == null ? 0 : momentum,
                Boolean.TRUE.equals(nesterov),
                dampening == null ? 0 : dampening,
                wd,
                betas == null ? 0.9 : betas.get(0),
                betas == null ? 0.999 : betas.get(1),
                eps == null ? 1e-8 : eps,
                Boolean.TRUE.equals(decayNormAndBias),
                g,
                layerDecay == null ? 1.0 : layerDecay));
    }
}
