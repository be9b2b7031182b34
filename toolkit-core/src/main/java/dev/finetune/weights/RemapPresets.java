package dev.finetune.weights;

import dev.finetune.ConfigException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Shipped key rewrites for state_dicts of other libraries ({@code model.remap_preset}), applied before the config's own
 * {@code model.remap} rules.
 *
 * <ul>
 *   <li>{@code timm-resnet}: none — timm's ResNets keep torchvision's names ({@code conv1}, {@code bn1},
 *       {@code layer1.0.conv1}, {@code fc}).</li>
 *   <li>{@code timm-efficientnet}: timm's {@code efficientnet_b0} … {@code b3} (the PyTorch-native ones, not
 *       {@code tf_*} with TensorFlow's asymmetric padding) onto torchvision's: {@code conv_stem}/{@code bn1} →
 *       {@code features.0}, {@code blocks.I.J} → {@code features.(I+1).J.block}, whose first stage is timm's
 *       {@code DepthwiseSeparableConv} ({@code conv_dw}, {@code bn1}, {@code se}, {@code conv_pw}, {@code bn2}) and
 *       the rest its {@code InvertedResidual} ({@code conv_pw}, {@code bn1}, {@code conv_dw}, {@code bn2}, {@code se},
 *       {@code conv_pwl}, {@code bn3}), {@code se.conv_reduce}/{@code conv_expand} → {@code fc1}/{@code fc2},
 *       {@code conv_head}/{@code bn2} → {@code features.8}, {@code classifier} → {@code classifier.1}. Module names read
 *       from timm's {@code _efficientnet_blocks.py} and {@code efficientnet.py}.</li>
 * </ul>
 */
public final class RemapPresets {
    private RemapPresets() {}

    private static final Map<String, List<KeyMapping.Remap>> PRESETS = Map.of(
            "timm-resnet", List.of(),
            "timm-efficientnet", timmEfficientNet());

    /** The rules of a preset; an unknown name is a config error listing the known ones. */
    public static List<KeyMapping.Remap> get(String name) {
        List<KeyMapping.Remap> rules = PRESETS.get(name);
        if (rules == null) {
            throw new ConfigException(ConfigException.Part.KEY_MAPPING, "remap_preset", "unknown preset '" + name
                    + "'; known: " + PRESETS.keySet().stream().sorted().toList());
        }
        return rules;
    }

    private static List<KeyMapping.Remap> timmEfficientNet() {
        List<KeyMapping.Remap> r = new ArrayList<>();
        r.add(new KeyMapping.Remap("^conv_stem\\.", "features.0.0."));
        r.add(new KeyMapping.Remap("^bn1\\.", "features.0.1."));
        r.add(new KeyMapping.Remap("^conv_head\\.", "features.8.0."));
        r.add(new KeyMapping.Remap("^bn2\\.", "features.8.1."));
        r.add(new KeyMapping.Remap("^classifier\\.", "classifier.1."));
        for (int i = 0; i <= 6; i++) {
            r.add(new KeyMapping.Remap("^blocks\\." + i + "\\.", "features." + (i + 1) + "."));
        }
        String ds = "^(features\\.1\\.\\d+\\.)";
        r.add(new KeyMapping.Remap(ds + "conv_dw\\.", "$1block.0.0."));
        r.add(new KeyMapping.Remap(ds + "bn1\\.", "$1block.0.1."));
        r.add(new KeyMapping.Remap(ds + "se\\.conv_reduce\\.", "$1block.1.fc1."));
        r.add(new KeyMapping.Remap(ds + "se\\.conv_expand\\.", "$1block.1.fc2."));
        r.add(new KeyMapping.Remap(ds + "conv_pw\\.", "$1block.2.0."));
        r.add(new KeyMapping.Remap(ds + "bn2\\.", "$1block.2.1."));
        String ir = "^(features\\.[2-7]\\.\\d+\\.)";
        r.add(new KeyMapping.Remap(ir + "conv_pw\\.", "$1block.0.0."));
        r.add(new KeyMapping.Remap(ir + "bn1\\.", "$1block.0.1."));
        r.add(new KeyMapping.Remap(ir + "conv_dw\\.", "$1block.1.0."));
        r.add(new KeyMapping.Remap(ir + "bn2\\.", "$1block.1.1."));
        r.add(new KeyMapping.Remap(ir + "se\\.conv_reduce\\.", "$1block.2.fc1."));
        r.add(new KeyMapping.Remap(ir + "se\\.conv_expand\\.", "$1block.2.fc2."));
        r.add(new KeyMapping.Remap(ir + "conv_pwl\\.", "$1block.3.0."));
        r.add(new KeyMapping.Remap(ir + "bn3\\.", "$1block.3.1."));
        return List.copyOf(r);
    }
}
