package dev.finetune.policy;

import dev.finetune.ConfigException;

/**
 * How BatchNorm layers behave in training forwards. The trap this closes: PyTorch updates running statistics of a
 * BN in train mode even when its parameters are frozen, so a "frozen" backbone silently drifts.
 */
public enum BnPolicy {
    /** Default. A BN whose affine parameters are frozen keeps its statistics (eval mode, as timm freezes); a BN that
     * trains updates them. */
    AUTO("auto"),
    /** Every BN uses batch statistics and updates running ones, frozen or not (plain {@code model.train()}). */
    TRAIN("train"),
    /** Every BN uses and keeps its running statistics; affine parameters follow the rules. */
    FREEZE_STATS("freeze-stats"),
    /** Every BN keeps its statistics and its affine parameters are frozen, whatever the rules say. */
    FREEZE_ALL("freeze-all");

    private final String configName;

    BnPolicy(String configName) {
        this.configName = configName;
    }

    public String configName() {
        return configName;
    }

    /** Parses the YAML value; unknown → a config error listing the choices. */
    public static BnPolicy parse(String value, String where) {
        if (value == null) {
            return AUTO;
        }
        for (BnPolicy p : values()) {
            if (p.configName.equals(value)) {
                return p;
            }
        }
        throw new ConfigException("", where + ": unknown BatchNorm mode '" + value + "'; choose auto, train, freeze-stats or freeze-all");
    }
}
