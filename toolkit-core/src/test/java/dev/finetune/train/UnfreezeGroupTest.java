package dev.finetune.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.finetune.config.ConfigLoader;
import dev.finetune.inspect.InspectReport;
import dev.finetune.optim.OptimizerSettings;
import dev.finetune.optim.ParamSlot;
import dev.finetune.policy.FreezePolicy;
import dev.finetune.run.Assembler;
import dev.finetune.testing.TorchReference;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;

/**
 * Gradual unfreezing gives the parameters it unfreezes their own optimizer group with the step's {@code lr_mult}
 * (PyTorch's {@code add_param_group}); parameters trainable before keep theirs; {@code inspect --epoch} shows it.
 */
class UnfreezeGroupTest {
    @Test
    void unfreezeAddsAGroupForTheNewlyTrainableOnly() {
        try (FineTuner ft = FineTuner.builder().headClasses(5)
                .policy(FreezePolicy.linearProbe())
                .optimizer(OptimizerSettings.sgd(0.01, 0.9))
                .build()) {
            ft.unfreeze(FreezePolicy.Rule.train("train.unfreeze[0]", "layer4"), 0.1);
            ft.unfreeze(FreezePolicy.Rule.train("train.unfreeze[1]", "re:^layer[34]\\."), 0.03);
            Map<String, ParamSlot> slots = ft.optimizer().slots().stream()
                    .collect(Collectors.toMap(ParamSlot::name, s -> s));
            assertEquals(1.0, slots.get("fc.weight").lrMult());
            assertEquals("base", slots.get("fc.weight").group());
            assertEquals(0.1, slots.get("layer4.0.conv1.weight").lrMult(), "layer4 keeps the group it joined");
            assertEquals("train.unfreeze[0]", slots.get("layer4.1.bn2.bias").group());
            assertEquals(0.03, slots.get("layer3.1.conv2.weight").lrMult());
            assertEquals("train.unfreeze[1]", slots.get("layer3.0.downsample.0.weight").group());
            assertFalse(slots.containsKey("layer2.0.conv1.weight"));
            assertEquals(List.of("train.unfreeze[0]", "train.unfreeze[1]"),
                    ft.addedGroups().stream().map(g -> g.name()).toList());
        }
    }

    @Test
    void inspectShowsTheGroupFromItsEpoch() {
        var loaded = ConfigLoader.load(TorchReference.repoRoot().resolve("configs/gradual-unfreeze.yaml"), List.of());
        InspectReport before = Assembler.inspect(loaded, 5, 2);
        InspectReport after = Assembler.inspect(loaded, 5, 3);
        InspectReport later = Assembler.inspect(loaded, 5, 5);
        assertNull(row(before, "layer4.0.conv1.weight").lr(), "frozen before epoch 3");
        assertEquals(0.001, row(after, "layer4.0.conv1.weight").lr(), 1e-12);
        assertEquals("train.unfreeze[0]", row(after, "layer4.0.conv1.weight").optimizerGroup());
        assertNull(row(after, "layer3.0.conv1.weight").lr());
        assertEquals(0.0003, row(later, "layer3.0.conv1.weight").lr(), 1e-12);
        assertEquals(0.001, row(later, "layer4.0.conv1.weight").lr(), 1e-12);
        assertTrue(after.trainableParams() > before.trainableParams());
    }

    private static InspectReport.Row row(InspectReport r, String name) {
        return r.rows().stream().filter(x -> x.name().equals(name)).findFirst().orElseThrow();
    }
}
