package dev.finetune.weights;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.ParameterStore;
import dev.finetune.ConfigException;
import dev.finetune.checkpoint.Checkpoint;
import dev.finetune.checkpoint.Checkpoints;
import dev.finetune.checkpoint.HostTensor;
import dev.finetune.engine.Engines;
import dev.finetune.model.EfficientNetArch;
import dev.finetune.model.FamilyParityTest;
import dev.finetune.model.Network;
import dev.finetune.testing.TorchReference;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * {@code model.remap_preset: timm-efficientnet}: a state_dict with timm's EfficientNet module names (as timm's
 * {@code efficientnet.py} and {@code _efficientnet_blocks.py} define them) loads strictly into torchvision's
 * efficientnet_b0 and gives torchvision's logits.
 */
class RemapPresetTest {

    @Test
    void timmEfficientNetNamesLoadOntoTorchvisions() throws Exception {
        Path ref = FamilyParityTest.reference();
        Checkpoint tv = Checkpoints.read(ref.resolve("efficientnet_b0.pth"));
        LinkedHashMap<String, HostTensor> timm = new LinkedHashMap<>();
        tv.tensors().forEach((k, t) -> timm.put(timmName(k), t));
        assertTrue(timm.containsKey("blocks.0.0.se.conv_reduce.weight"), timm.keySet().toString());
        assertTrue(timm.containsKey("blocks.5.3.conv_pwl.weight"));
        assertTrue(timm.containsKey("conv_head.weight") && timm.containsKey("bn2.running_var"));
        Checkpoint fromTimm = new Checkpoint(tv.source(), tv.format(), timm, Map.of());
        KeyMapping mapping = KeyMapping.of(null, RemapPresets.get("timm-efficientnet"));
        assertEquals("torchvision efficientnet_b0, 1000 classes",
                ArchitectureRecognizer.recognize(fromTimm, mapping).orElseThrow().describe());
        Engines.pytorch();
        try (NDManager m = NDManager.newBaseManager()) {
            Network net = EfficientNetArch.EFFICIENTNET_B0.create(1000).initialize(m);
            LoadReport r = WeightLoader.load(net, fromTimm, new WeightLoader.Options(mapping, true, false));
            assertTrue(r.isClean(), r.summary());
            var x = m.create(TorchReference.readF32(ref.resolve("input.f32")), new Shape(2, 3, 64, 64));
            float[] logits;
            try (var g = Engines.noGrad()) {
                logits = net.forward(new ParameterStore(m, false), new NDList(x), false).singletonOrThrow()
                        .toFloatArray();
            }
            double d = TorchReference.maxAbsDiff(logits, TorchReference.readF32(ref.resolve("efficientnet_b0_eval.f32")));
            assertTrue(d < 1e-5, "logits differ by " + d);
        }
        assertEquals(0, RemapPresets.get("timm-resnet").size(), "timm's ResNets use torchvision's names");
        ConfigException e = assertThrows(ConfigException.class, () -> RemapPresets.get("timm-vit"));
        assertEquals("remap_preset: unknown preset 'timm-vit'; known: [timm-efficientnet, timm-resnet]", e.getMessage());
    }

    private static final Pattern STAGE = Pattern.compile("^features\\.(\\d)\\.(\\d+)\\.block\\.(.*)$");

    /** torchvision's efficientnet_b0 name → timm's, written from timm's module definitions. */
    private static String timmName(String k) {
        k = k.replaceFirst("^features\\.0\\.0\\.", "conv_stem.").replaceFirst("^features\\.0\\.1\\.", "bn1.")
                .replaceFirst("^features\\.8\\.0\\.", "conv_head.").replaceFirst("^features\\.8\\.1\\.", "bn2.")
                .replaceFirst("^classifier\\.1\\.", "classifier.");
        Matcher m = STAGE.matcher(k);
        if (!m.matches()) {
            return k;
        }
        int stage = Integer.parseInt(m.group(1));
        String rest = m.group(3);
        String[][] names = stage == 1
                ? new String[][] {{"0.0.", "conv_dw."}, {"0.1.", "bn1."}, {"1.fc1.", "se.conv_reduce."},
                    {"1.fc2.", "se.conv_expand."}, {"2.0.", "conv_pw."}, {"2.1.", "bn2."}}
                : new String[][] {{"0.0.", "conv_pw."}, {"0.1.", "bn1."}, {"1.0.", "conv_dw."}, {"1.1.", "bn2."},
                    {"2.fc1.", "se.conv_reduce."}, {"2.fc2.", "se.conv_expand."}, {"3.0.", "conv_pwl."},
                    {"3.1.", "bn3."}};
        for (String[] n : names) {
            if (rest.startsWith(n[0])) {
                return "blocks." + (stage - 1) + "." + m.group(2) + "." + n[1] + rest.substring(n[0].length());
            }
        }
        throw new AssertionError("unmapped " + k);
    }
}
