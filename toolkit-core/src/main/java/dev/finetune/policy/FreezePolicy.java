package dev.finetune.policy;

import dev.finetune.ConfigException;
import dev.finetune.model.BnMode;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Which parameters train and how BatchNorm behaves, decided by name. Evaluation order: the {@code default}, then
 * {@code frozen_stages} (the stem and the first N stages, as mmpretrain's {@code frozen_stages}), then the rules in
 * order — the last rule that matches a name wins. {@code batchnorm} then sets each BN layer's statistics mode.
 *
 * @param defaultTrain whether a parameter no rule touches trains
 * @param frozenStages -1 for none, 0 for the stem only, N for the stem and {@code layer1}…{@code layerN}
 * @param rules ordered rules
 * @param batchnorm BatchNorm behaviour
 */
public record FreezePolicy(boolean defaultTrain, int frozenStages, List<Rule> rules, BnPolicy batchnorm) {

    public FreezePolicy {
        rules = List.copyOf(rules);
        if (frozenStages < -1) {
            throw new ConfigException(ConfigException.Part.FREEZE_POLICY, "frozen_stages", "must be -1 (none) or more, found " + frozenStages);
        }
    }

    /**
     * One rule: {@code {train: "fc.*"}} or {@code {freeze: ["layer1", "re:^layer2\\.0\\."]}}.
     *
     * @param train true for a train rule, false for a freeze rule
     * @param patterns the names it matches (any of them)
     * @param where the YAML path ({@code freeze.rules[1]}) for reports and errors
     */
    public record Rule(boolean train, List<NamePattern> patterns, String where) {
        public Rule {
            patterns = List.copyOf(patterns);
        }

        /** A train rule from pattern strings. */
        public static Rule train(String where, String... patterns) {
            return of(true, where, patterns);
        }

        /** A freeze rule from pattern strings. */
        public static Rule freeze(String where, String... patterns) {
            return of(false, where, patterns);
        }

        private static Rule of(boolean train, String where, String... patterns) {
            List<NamePattern> p = new ArrayList<>();
            for (int i = 0; i < patterns.length; i++) {
                p.add(NamePattern.parse(patterns[i], patterns.length == 1 ? where : where + "[" + i + "]"));
            }
            return new Rule(train, p, where);
        }

        boolean matches(TensorInfo t) {
            return patterns.stream().anyMatch(p -> p.matches(t));
        }

        /** As written: {@code train: fc.*}. */
        public String describe() {
            List<String> src = patterns.stream().map(NamePattern::source).toList();
            return (train ? "train: " : "freeze: ") + (src.size() == 1 ? src.get(0) : src.toString());
        }
    }

    /** Everything trains, BN statistics update: plain full fine-tuning. */
    public static FreezePolicy trainAll() {
        return new FreezePolicy(true, -1, List.of(), BnPolicy.AUTO);
    }

    /** The linear probe: everything frozen but the head, frozen BN keeps its statistics. */
    public static FreezePolicy linearProbe() {
        return new FreezePolicy(false, -1, List.of(Rule.train("freeze.rules[0]", "stage:head")), BnPolicy.AUTO);
    }

    /** This policy with one more rule at the end (it wins over the earlier ones): how gradual unfreezing works. */
    public FreezePolicy withRule(Rule rule) {
        List<Rule> r = new ArrayList<>(rules);
        r.add(rule);
        return new FreezePolicy(defaultTrain, frozenStages, r, batchnorm);
    }

    /**
     * Decides every tensor. A rule whose patterns match nothing, or a result with nothing left to train, is a config
     * error that names the rule and the nearest real names.
     */
    public FreezePlan plan(List<TensorInfo> tensors) {
        List<String> names = tensors.stream().map(TensorInfo::name).toList();
        List<String> stageNames = tensors.isEmpty() ? List.of() : tensors.get(0).stageNames();
        int maxFrozen = stageNames.size() - 2; // every stage but the head
        if (frozenStages >= 0 && frozenStages > maxFrozen) {
            throw new ConfigException(ConfigException.Part.FREEZE_POLICY, "frozen_stages", "must be -1 (none) to " + maxFrozen + " for this model"
                    + " (its stages are " + stageNames + "; the head always trains), found " + frozenStages);
        }
        for (Rule rule : rules) {
            for (NamePattern p : rule.patterns()) {
                if (p.stage() != null && !stageNames.contains(p.stage())) {
                    throw new ConfigException(p.where(), "pattern '" + p.source() + "' names no stage of this model;"
                            + " its stages are " + stageNames);
                }
                if (tensors.stream().noneMatch(p::matches)) {
                    throw new ConfigException("", p.where() + ": pattern '" + p.source() + "' matches no parameter of the model; nearest"
                                    + " names: " + NearestNames.nearest(p.source(), names, 5)
                                    + ". Names are torchvision's (conv1.weight, layer4.1.bn2.bias, fc.weight); run"
                                    + " 'finetune inspect' to list them");
                }
            }
        }
        List<FreezePlan.Decision> decisions = new ArrayList<>();
        Map<String, Boolean> bnAffineTrains = new LinkedHashMap<>();
        for (TensorInfo t : tensors) {
            if (t.buffer()) {
                decisions.add(new FreezePlan.Decision(t, false, "buffer (never trained; see BN mode)"));
                continue;
            }
            boolean train = defaultTrain;
            String why = "default: " + (defaultTrain ? "train" : "freeze");
            if (t.stage() >= 0 && t.stage() <= frozenStages) {
                train = false;
                why = "frozen_stages: " + frozenStages;
            }
            for (Rule rule : rules) {
                if (rule.matches(t)) {
                    train = rule.train();
                    why = rule.where() + " (" + rule.describe() + ")";
                }
            }
            if (t.bnModule() != null && batchnorm == BnPolicy.FREEZE_ALL) {
                train = false;
                why = "batchnorm: freeze-all";
            }
            if (t.bnModule() != null) {
                bnAffineTrains.merge(t.bnModule(), train, Boolean::logicalOr);
            }
            decisions.add(new FreezePlan.Decision(t, train, why));
        }
        Map<String, BnMode> modes = new LinkedHashMap<>();
        Map<String, String> modeWhy = new LinkedHashMap<>();
        bnAffineTrains.forEach((bn, trains) -> {
            switch (batchnorm) {
                case TRAIN -> {
                    modes.put(bn, BnMode.TRAIN);
                    modeWhy.put(bn, "batchnorm: train");
                }
                case FREEZE_STATS, FREEZE_ALL -> {
                    modes.put(bn, BnMode.FROZEN_STATS);
                    modeWhy.put(bn, "batchnorm: " + batchnorm.configName());
                }
                case AUTO -> {
                    modes.put(bn, trains ? BnMode.TRAIN : BnMode.FROZEN_STATS);
                    modeWhy.put(bn, "batchnorm: auto (" + (trains ? "affine trains" : "affine frozen") + ")");
                }
            }
        });
        FreezePlan plan = new FreezePlan(this, decisions, modes, modeWhy);
        if (plan.trainableParameterCount() == 0) {
            throw new ConfigException(ConfigException.Part.FREEZE_POLICY, "", "this policy leaves nothing to train (all " + plan.frozenParameterCount()
                            + " parameters frozen); add a rule such as {train: \"stage:head\"} or set default: train");
        }
        return plan;
    }

    /** A YAML-like summary of the policy, for reports. */
    public String describe() {
        StringBuilder b = new StringBuilder("default: ").append(defaultTrain ? "train" : "freeze");
        if (frozenStages >= 0) {
            b.append(", frozen_stages: ").append(frozenStages);
        }
        for (Rule r : rules) {
            b.append(", {").append(r.describe()).append('}');
        }
        return b.append(", batchnorm: ").append(batchnorm.configName()).toString();
    }
}
