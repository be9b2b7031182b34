package dev.finetune.optim;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.finetune.policy.FreezePolicy;
import dev.finetune.train.FineTuner;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;

/** {@code optimizer.layer_decay}: each stage's rate is the head's times decay^(stages after it). */
class LayerDecayTest {

    @Test
    void ratesFallGeometricallyFromTheHead() {
        OptimizerSettings s = new OptimizerSettings("sgd", 0.1, 0.9, false, 0, 0, 0.9, 0.999, 1e-8, false,
                List.of(new OptimizerSettings.GroupSettings("layer4.*", 2.0, null)), 0.5);
        try (FineTuner ft = FineTuner.builder().headClasses(3).policy(FreezePolicy.trainAll()).optimizer(s).seed(0)
                .build()) {
            Map<String, Double> mult = ft.optimizer().slots().stream()
                    .collect(Collectors.toMap(ParamSlot::name, ParamSlot::lrMult));
            assertEquals(1.0, mult.get("fc.weight"));
            assertEquals(2.0 * 0.5, mult.get("layer4.1.conv2.weight"), 1e-12, "the group's mult, then the decay");
            assertEquals(0.25, mult.get("layer3.0.bn1.bias"), 1e-12);
            assertEquals(0.125, mult.get("layer2.0.conv1.weight"), 1e-12);
            assertEquals(0.0625, mult.get("layer1.1.conv2.weight"), 1e-12);
            assertEquals(0.03125, mult.get("conv1.weight"), 1e-12);
        }
    }
}
