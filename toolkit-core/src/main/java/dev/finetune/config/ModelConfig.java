package dev.finetune.config;

import dev.finetune.ConfigException;
import java.util.List;

/**
 * {@code model:} — the network, where its weights come from, and the new head.
 *
 * @param arch a torchvision architecture name ({@code resnet18}, {@code mobilenet_v3_large} …); absent, the one the
 *     checkpoint's keys and shapes show, else resnet18
 * @param checkpoint a file (.pth, .safetensors, our own), {@code torchvision:resnet18}, or absent/{@code none} for
 *     torchvision's from-scratch initialization
 * @param keyPrefix a prefix to strip from checkpoint keys ({@code backbone.}); {@code module.} and
 *     {@code _orig_mod.} are always stripped
 * @param remap regex rewrites of checkpoint keys
 * @param remapPreset shipped rewrites applied before {@code remap}: {@code timm-efficientnet}, {@code timm-resnet}
 * @param strict fail on missing / unexpected / mis-shaped keys (default true)
 * @param head the new classifier head; absent keeps the checkpoint's head
 */
public record ModelConfig(
        String arch, String checkpoint, String keyPrefix, List<RemapConfig> remap, Boolean strict, HeadConfig head,
        String remapPreset) {

    public ModelConfig {
        remap = remap == null ? List.of() : List.copyOf(remap);
        strict = strict == null ? Boolean.TRUE : strict;
        if ("none".equals(checkpoint) || (checkpoint != null && checkpoint.isBlank())) {
            checkpoint = null;
        }
    }

    /**
     * {@code {from: "^head\\.", to: "fc."}}.
     *
     * @param from Java regex
     * @param to replacement
     */
    public record RemapConfig(String from, String to) {}

    /**
     * {@code head: {classes: 100, dropout: 0.2}}.
     *
     * @param classes a count, or {@code auto} to take it from the training data
     * @param dropout dropout before the head during training; null for the architecture's own (0 for ResNet, 0.2
     *     for MobileNet, 0.5 for VGG, as torchvision builds them)
     */
    public record HeadConfig(String classes, Double dropout) {
        public HeadConfig {
            if (dropout != null && !(dropout >= 0 && dropout < 1)) {
                throw new ConfigException("model.head.dropout", "must be in [0, 1), found " + dropout);
            }
            if (classes != null && !"auto".equals(classes)) {
                int n;
                try {
                    n = Integer.parseInt(classes);
                } catch (NumberFormatException e) {
                    throw new ConfigException("model.head.classes", "must be a whole number or 'auto', found '"
                            + classes + "'");
                }
                if (n < 1) {
                    throw new ConfigException("model.head.classes", "must be >= 1, found " + n);
                }
            }
        }

        /** True when the class count comes from the data set. */
        public boolean auto() {
            return classes == null || "auto".equals(classes);
        }

        /** The explicit count (call only when not {@link #auto()}). */
        public int count() {
            return Integer.parseInt(classes);
        }
    }
}
