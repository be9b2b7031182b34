package dev.finetune.optim;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.finetune.ErrorKind;
import dev.finetune.FinetuneException;
import dev.finetune.config.ConfigLoader;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.api.io.TempDir;

/** {@link OptimizerSettings}: PyTorch's defaults, and one exact message per invalid value. */
class OptimizerSettingsTest {

    @TempDir
    Path tmp;

    private static OptimizerSettings settings(String name, double lr, double momentum, boolean nesterov,
            double dampening, double wd, double b1, double b2, double eps, List<OptimizerSettings.GroupSettings> g) {
        return new OptimizerSettings(name, lr, momentum, nesterov, dampening, wd, b1, b2, eps, false, g);
    }

    private static OptimizerSettings sgd(double lr, double momentum) {
        return settings("sgd", lr, momentum, false, 0, 0, 0.9, 0.999, 1e-8, List.of());
    }

    private static OptimizerSettings withGroups(OptimizerSettings.GroupSettings... groups) {
        return settings("sgd", 0.1, 0.9, false, 0, 1e-4, 0.9, 0.999, 1e-8, List.of(groups));
    }

    @Test
    void factoriesUsePyTorchDefaults() {
        OptimizerSettings s = OptimizerSettings.sgd(0.01, 0.9);
        assertEquals("sgd", s.name());
        assertEquals(0.0, s.weightDecay());
        assertEquals(0.0, s.dampening());
        assertEquals(List.of(), s.groups());
        OptimizerSettings a = OptimizerSettings.adam("AdamW", 1e-3, 0.01);
        assertEquals("adamw", a.name(), "names are case-insensitive");
        assertEquals(0.9, a.beta1());
        assertEquals(0.999, a.beta2());
        assertEquals(1e-8, a.eps());
        assertEquals("sgd", new OptimizerSettings(null, 0.1, 0, false, 0, 0, 0.9, 0.999, 1e-8, false, null).name());
    }

    @Test
    void unknownName() {
        assertError(() -> settings("rmsprop", 0.1, 0, false, 0, 0, 0.9, 0.999, 1e-8, List.of()),
                "name: unknown optimizer 'rmsprop'; choose sgd, adam or adamw");
    }

    @Test
    void learningRateMustBePositiveAndFinite() {
        assertError(() -> sgd(0, 0), "lr: must be > 0, found 0.0");
        assertError(() -> sgd(-0.5, 0), "lr: must be > 0, found -0.5");
        assertError(() -> sgd(Double.NaN, 0), "lr: must be > 0, found NaN");
        assertError(() -> sgd(Double.POSITIVE_INFINITY, 0), "lr: must be > 0, found Infinity");
    }

    @Test
    void momentumInZeroOne() {
        assertError(() -> sgd(0.1, 1.0), "momentum: must be in [0, 1), found 1.0");
        assertError(() -> sgd(0.1, -0.1), "momentum: must be in [0, 1), found -0.1");
    }

    @Test
    void nesterovNeedsMomentumAndNoDampening() {
        String msg = "nesterov: Nesterov needs momentum > 0 and dampening 0 (as torch.optim.SGD)";
        assertError(() -> settings("sgd", 0.1, 0, true, 0, 0, 0.9, 0.999, 1e-8, List.of()), msg);
        assertError(() -> settings("sgd", 0.1, 0.9, true, 0.1, 0, 0.9, 0.999, 1e-8, List.of()), msg);
    }

    @Test
    void weightDecayNotNegative() {
        assertError(() -> settings("sgd", 0.1, 0, false, 0, -1, 0.9, 0.999, 1e-8, List.of()),
                "weight_decay: must be >= 0, found -1.0");
    }

    @Test
    void betasInZeroOne() {
        assertError(() -> settings("adam", 0.1, 0, false, 0, 0, 1.0, 0.999, 1e-8, List.of()),
                "betas: each must be in [0, 1), found [1.0, 0.999]");
        assertError(() -> settings("adam", 0.1, 0, false, 0, 0, 0.9, -0.1, 1e-8, List.of()),
                "betas: each must be in [0, 1), found [0.9, -0.1]");
    }

    @Test
    void epsPositive() {
        assertError(() -> settings("adam", 0.1, 0, false, 0, 0, 0.9, 0.999, 0, List.of()),
                "eps: must be > 0, found 0.0");
    }

    @Test
    void groupLrMultMustBePositive() {
        assertError(() -> withGroups(new OptimizerSettings.GroupSettings("layer4.*", 0.0, null)),
                "groups[0].lr_mult: must be > 0, found 0.0 (to stop a group from training, freeze it in"
                        + " the policy instead)");
        assertError(() -> withGroups(new OptimizerSettings.GroupSettings("fc.*", 1.0, null),
                        new OptimizerSettings.GroupSettings("layer4.*", -2.0, null)),
                "groups[1].lr_mult: must be > 0, found -2.0 (to stop a group from training, freeze it in"
                        + " the policy instead)");
        assertError(() -> withGroups(new OptimizerSettings.GroupSettings("fc.*", Double.NaN, null)),
                "groups[0].lr_mult: must be > 0, found NaN (to stop a group from training, freeze it in"
                        + " the policy instead)");
    }

    @Test
    void groupWeightDecayNotNegative() {
        assertError(() -> withGroups(new OptimizerSettings.GroupSettings("fc.*", null, -0.1)),
                "groups[0].weight_decay: must be >= 0, found -0.1");
    }

    @Test
    void groupsFromConfigCarryTheirIndex() throws IOException {
        Path cfg = tmp.resolve("a.yaml");
        Files.writeString(cfg, "model: {arch: resnet18}\noptimizer:\n  lr: 0.1\n  groups:\n"
                + "    - {match: fc.*, lr_mult: 2}\n    - {match: layer4, lr_mult: 0}\n");
        assertError(() -> ConfigLoader.load(cfg, List.of()).config().optimizer().toSettings(),
                "optimizer.groups[1].lr_mult: must be > 0, found 0.0 (to stop a group from training, freeze it in"
                        + " the policy instead)");
    }

    @Test
    void nanIsRejected() throws IOException {
        Path cfg = tmp.resolve("nan.yaml");
        Files.writeString(cfg, "model: {arch: resnet18}\noptimizer: {lr: 0.1, momentum: NaN}\n");
        assertError(() -> ConfigLoader.load(cfg, List.of()).config().optimizer().toSettings(),
                "optimizer.momentum: must be in [0, 1), found NaN");
        assertError(() -> settings("sgd", 0.1, 0, false, 0, Double.NaN, 0.9, 0.999, 1e-8, List.of()),
                "weight_decay: must be >= 0, found NaN");
        assertError(() -> settings("adam", 0.1, 0, false, 0, 0, Double.NaN, 0.999, 1e-8, List.of()),
                "betas: each must be in [0, 1), found [NaN, 0.999]");
        assertError(() -> withGroups(new OptimizerSettings.GroupSettings("fc.*", null, Double.NaN)),
                "groups[0].weight_decay: must be >= 0, found NaN");
    }

    private static void assertError(Executable body, String message) {
        FinetuneException e = assertThrows(FinetuneException.class, body);
        assertEquals(message, e.getMessage());
        assertEquals(ErrorKind.CONFIG, e.kind());
    }
}
