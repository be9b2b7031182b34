package dev.finetune.config;

import com.fasterxml.jackson.annotation.JsonFormat;
import com.fasterxml.jackson.annotation.JsonProperty;
import dev.finetune.ConfigException;
import dev.finetune.policy.BnPolicy;
import dev.finetune.policy.FreezePolicy;
import dev.finetune.policy.NamePattern;
import java.util.ArrayList;
import java.util.List;

/**
 * {@code freeze:} — the freeze policy as written in YAML (inline, or in its own file referenced by path).
 *
 * <pre>
 * freeze:
 *   default: freeze           # train | freeze (default: train)
 *   frozen_stages: 2          # optional: stem + layer1..layer2 frozen
 *   rules:                    # last match wins
 *     - {train: "fc.*"}
 *     - {freeze: ["re:^layer4\\.0\\.", "*.bn*.*"]}
 *   batchnorm: auto           # auto | train | freeze-stats | freeze-all
 * </pre>
 *
 * @param defaultAction train or freeze
 * @param frozenStages -1..4
 * @param rules ordered rules
 * @param batchnorm BN behaviour
 * @param description free text shown by inspect
 */
public record FreezeConfig(
        @JsonProperty("default") String defaultAction,
        Integer frozenStages,
        List<RuleConfig> rules,
        String batchnorm,
        String description) {

    public FreezeConfig {
        rules = rules == null ? List.of() : List.copyOf(rules);
        if (defaultAction != null && !defaultAction.equals("train") && !defaultAction.equals("freeze")) {
            throw new ConfigException("freeze.default", "must be 'train' or 'freeze', found '" + defaultAction + "'");
        }
    }

    /** Everything trains. */
    public static FreezeConfig trainAll() {
        return new FreezeConfig("train", null, List.of(), null, null);
    }

    /**
     * One rule: exactly one of {@code train} / {@code freeze}, each a pattern or a list of patterns.
     *
     * @param train patterns to train
     * @param freeze patterns to freeze
     */
    public record RuleConfig(
            @JsonFormat(with = JsonFormat.Feature.ACCEPT_SINGLE_VALUE_AS_ARRAY) List<String> train,
            @JsonFormat(with = JsonFormat.Feature.ACCEPT_SINGLE_VALUE_AS_ARRAY) List<String> freeze) {}

    /** The policy this section describes; errors carry the YAML path. */
    public FreezePolicy toPolicy() {
        List<FreezePolicy.Rule> out = new ArrayList<>();
        for (int i = 0; i < rules.size(); i++) {
            String where = "freeze.rules[" + i + "]";
            RuleConfig r = rules.get(i);
            if (r == null || (r.train() == null) == (r.freeze() == null)) {
                throw new ConfigException(where, "a rule has exactly one of 'train' or 'freeze', e.g. {train: \"fc.*\"}");
            }
            boolean train = r.train() != null;
            List<String> pats = train ? r.train() : r.freeze();
            if (pats.isEmpty()) {
                throw new ConfigException(where, "empty pattern list");
            }
            String key = where + "." + (train ? "train" : "freeze");
            List<NamePattern> parsed = new ArrayList<>();
            for (int j = 0; j < pats.size(); j++) {
                parsed.add(NamePattern.parse(pats.get(j), pats.size() == 1 ? key : key + "[" + j + "]"));
            }
            out.add(new FreezePolicy.Rule(train, parsed, where));
        }
        return ConfigPaths.build(() -> new FreezePolicy(
                !"freeze".equals(defaultAction),
                frozenStages == null ? -1 : frozenStages,
                out,
                BnPolicy.parse(batchnorm, "freeze.batchnorm")));
    }
}
