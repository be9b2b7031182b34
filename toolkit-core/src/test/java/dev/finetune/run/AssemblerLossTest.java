package dev.finetune.run;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.finetune.ConfigException;
import dev.finetune.config.ConfigLoader;
import dev.finetune.config.TrainConfig;
import dev.finetune.train.CrossEntropy;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code train.label_smoothing} and {@code train.class_weights} become the training loss. */
class AssemblerLossTest {
    @TempDir
    Path tmp;

    private TrainConfig train(String yaml) throws Exception {
        Path f = tmp.resolve("c.yaml");
        Files.writeString(f, "model: {arch: resnet18}\noptimizer: {lr: 0.01}\ntrain: " + yaml + "\n");
        return ConfigLoader.load(f, List.of()).config().train();
    }

    @Test
    void autoWeightsAreScikitLearnsBalancedOnes() throws Exception {
        CrossEntropy l = Assembler.loss(train("{class_weights: auto, label_smoothing: 0.1}"), new int[] {10, 30, 0});
        // n / (classes * n_c) = 40 / (3 * 10), 40 / (3 * 30); a class without samples gets 1.
        assertArrayEquals(new float[] {40f / 30, 40f / 90, 1f}, l.classWeights(), 1e-6f);
        assertEquals(0.1, l.labelSmoothing());
        assertNull(Assembler.loss(train("{}"), new int[] {1, 2}).classWeights());
        assertArrayEquals(new float[] {1f, 3f},
                Assembler.loss(train("{class_weights: [1, 3]}"), new int[] {5, 5}).classWeights());
    }

    @Test
    void badSettingsNameTheirKeys() throws Exception {
        ConfigException count = assertThrows(ConfigException.class,
                () -> Assembler.loss(train("{class_weights: [1, 3]}"), new int[] {1, 2, 3}));
        assertEquals("train.class_weights: has 2 weights but the data has 3 classes", count.getMessage());
        ConfigException list = assertThrows(ConfigException.class, () -> train("{class_weights: [1, -3]}"));
        assertEquals("train.class_weights: must be 'auto' or a list of positive numbers, one per class, found [1, -3]",
                list.getMessage());
        ConfigException smooth = assertThrows(ConfigException.class, () -> train("{label_smoothing: 1.5}"));
        assertEquals("train.label_smoothing: must be in [0, 1), found 1.5", smooth.getMessage());
        ConfigException clip = assertThrows(ConfigException.class, () -> train("{clip_grad_norm: 0}"));
        assertEquals("train.clip_grad_norm: must be > 0, found 0.0", clip.getMessage());
    }
}
