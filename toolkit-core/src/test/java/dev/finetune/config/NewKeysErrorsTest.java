package dev.finetune.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.finetune.ConfigException;
import dev.finetune.ErrorKind;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The keys added for the families and the recipe: a bad value names its key, the choices, and what was found. */
class NewKeysErrorsTest {
    @TempDir
    Path tmp;

    private String error(String yaml) throws Exception {
        Path f = tmp.resolve("c.yaml");
        Files.writeString(f, yaml);
        ConfigException e = assertThrows(ConfigException.class, () -> ConfigLoader.load(f, List.of()));
        assertEquals(ErrorKind.CONFIG, e.kind());
        return e.getMessage();
    }

    private static final String BASE = "model: {arch: resnet18}\noptimizer: {lr: 0.01}\n";

    @Test
    void eachNamesItsKeyAndTheFix() throws Exception {
        assertEquals("data.sampler: must be shuffle or balanced, found 'weighted'",
                error(BASE + "data: {root: x, sampler: weighted}\n"));
        assertEquals("data.interpolation: must be bilinear or bicubic, found 'nearest'",
                error(BASE + "data: {root: x, interpolation: nearest}\n"));
        assertEquals("train.accumulate_steps: must be >= 1, found 0", error(BASE + "train: {accumulate_steps: 0}\n"));
        assertEquals("optimizer.layer_decay: must be in (0, 1] (1 = off), found 1.5",
                error("model: {arch: resnet18}\noptimizer: {lr: 0.01, layer_decay: 1.5}\n"));
        assertEquals("model.remap_preset: unknown preset 'timm-vit'; known: [timm-efficientnet, timm-resnet]",
                error("model: {arch: resnet18, remap_preset: timm-vit}\noptimizer: {lr: 0.01}\n"));
        assertEquals("model.arch: unknown architecture 'resnet19'; known: " + dev.finetune.model.Architectures.names(),
                error("model: {arch: resnet19}\noptimizer: {lr: 0.01}\n"));
        assertEquals("train.mixup: mixup_alpha and cutmix_alpha are both 0, which mixes nothing; remove train.mixup,"
                + " or set one of them > 0 (timm's recipe: 0.8 and 1.0)",
                error(BASE + "train: {mixup: {mixup_alpha: 0, cutmix_alpha: 0}}\n"));
        assertEquals("train.mixup.prob: must be in [0, 1], found 1.5", error(BASE + "train: {mixup: {prob: 1.5}}\n"));
        assertEquals("train.class_weights: cannot be combined with train.mixup: mixed targets use timm's soft-target"
                + " cross-entropy, which has no class weights; use data.sampler: balanced for imbalance instead, or"
                + " drop one of the two", error(BASE + "train: {mixup: {}, class_weights: auto}\n"));
        assertEquals("train.ema.decay: must be in (0, 1), found 1.0", error(BASE + "train: {ema: {decay: 1}}\n"));
        assertEquals("data.auto_augment: must be ta_wide (TrivialAugmentWide) or ra (RandAugment), found 'aa'",
                error(BASE + "data: {root: x, auto_augment: aa}\n"));
        assertEquals("data.ra_magnitude: applies to data.auto_augment: ra only (auto_augment is ta_wide)",
                error(BASE + "data: {root: x, auto_augment: ta_wide, ra_magnitude: 9}\n"));
        assertEquals("data.ra_magnitude: must be 0 to 30 (the 31 magnitude bins), found 31",
                error(BASE + "data: {root: x, auto_augment: ra, ra_magnitude: 31}\n"));
        assertEquals("data.color_jitter: cannot be combined with data.auto_augment (its ops already jitter brightness,"
                + " colour and contrast; timm applies color jitter only without auto-augment); keep one of the two",
                error(BASE + "data: {root: x, auto_augment: ra, color_jitter: {brightness: 0.4}}\n"));
        assertEquals("data.color_jitter.hue: must be 0 to 0.5, found 0.7",
                error(BASE + "data: {root: x, color_jitter: {hue: 0.7}}\n"));
        assertEquals("data.random_erase: must be a probability in [0, 1], found 1.5",
                error(BASE + "data: {root: x, random_erase: 1.5}\n"));
        assertEquals("train.channels_last: must be auto, true or false, found nhwc",
                error(BASE + "train: {channels_last: nhwc}\n"));
        assertEquals("train.precision: must be fp32, bf16 or bf16-mixed, found 'fp16'",
                error(BASE + "train: {precision: fp16}\n"));
        assertEquals("train.precision: bf16 runs the BN-folded frozen prefix, and train.fold_frozen_bn is false;"
                + " remove one of the two", error(BASE + "train: {precision: bf16, fold_frozen_bn: false}\n"));
        assertEquals("data.crop_scale: must be [min, max] with 0 < min <= max <= 1 (the crop's area as a fraction of"
                + " the image's, torchvision's default [0.08, 1]), found [0.8, 0.5]",
                error(BASE + "data: {root: x, crop_scale: [0.8, 0.5]}\n"));
        assertEquals("data.crop_scale: applies to the random resized crop of data.augment: true, and data.augment is"
                + " false; remove crop_scale or set augment: true",
                error(BASE + "data: {root: x, augment: false, crop_scale: [0.5, 1]}\n"));
        assertTrue(error(BASE + "train: {mixup: {mixup_alfa: 0.2}}\n").startsWith(
                "train.mixup.mixup_alfa: unknown key 'mixup_alfa'; known keys: cutmix_alpha, mixup_alpha, prob,"
                        + " switch_prob"));
    }
}
