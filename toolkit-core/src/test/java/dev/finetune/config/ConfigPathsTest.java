package dev.finetune.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.finetune.ConfigException;
import dev.finetune.optim.OptimizerSettings;
import dev.finetune.run.Assembler;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Domain objects name their own fields; the config layer puts them at their YAML paths, once — including errors that
 * only the model can reveal (a frozen_stages beyond this architecture's stages, a policy that leaves nothing to train).
 */
class ConfigPathsTest {
    @TempDir
    Path tmp;

    @Test
    void aLibraryErrorNamesTheFieldAndTheConfigErrorItsPath() throws Exception {
        ConfigException lib = assertThrows(ConfigException.class, () -> OptimizerSettings.sgd(-1, 0.9));
        assertEquals("lr: must be > 0, found -1.0", lib.getMessage());
        assertEquals(ConfigException.Part.OPTIMIZER, lib.part());
        assertEquals("optimizer.lr: must be > 0, found -1.0", ConfigPaths.atYamlPath(lib).getMessage());
    }

    @Test
    void errorsFoundOnTheModelAreAtTheirYamlPaths() throws Exception {
        Path cfg = tmp.resolve("a.yaml");
        Files.writeString(cfg, "model: {arch: mobilenet_v3_small, head: {classes: 3}}\n"
                + "freeze: {frozen_stages: 5}\noptimizer: {lr: 0.01}\n");
        ConfigException stages = assertThrows(ConfigException.class,
                () -> Assembler.inspect(ConfigLoader.load(cfg, List.of()), null));
        assertEquals("freeze.frozen_stages: must be -1 (none) to 4 for this model (its stages are [stem, stage1,"
                + " stage2, stage3, stage4, head]; the head always trains), found 5", stages.getMessage());
        ConfigException nothing = assertThrows(ConfigException.class, () -> Assembler.inspect(
                ConfigLoader.load(cfg, List.of("freeze.frozen_stages=-1", "freeze.default=freeze")), null));
        assertEquals("freeze: this policy leaves nothing to train (all 1520931 parameters frozen); add a rule"
                + " such as {train: \"stage:head\"} or set default: train", nothing.getMessage());
        ConfigException group = assertThrows(ConfigException.class, () -> Assembler.inspect(ConfigLoader.load(cfg,
                List.of("freeze.frozen_stages=-1", "optimizer.groups=[{match: \"layer4.*\", lr_mult: 2}]")), null));
        assertEquals("optimizer.groups[0].match: pattern 'layer4.*' matches no parameter of the model; names are"
                + " torchvision's (layer4.0.conv1.weight, fc.bias); run 'finetune inspect'", group.getMessage());
    }
}
