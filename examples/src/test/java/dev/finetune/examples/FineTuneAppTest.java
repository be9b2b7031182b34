package dev.finetune.examples;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The example app runs against the committed checkpoint and data, as CI builds it. */
class FineTuneAppTest {
    @Test
    void trainsAndPredictsAKnownClass() {
        Path repo = Path.of("").toAbsolutePath();
        while (!Files.isDirectory(repo.resolve("models"))) {
            repo = repo.getParent();
        }
        String predicted = FineTuneApp.run(repo.resolve("models/resnet18-fmnist-a.safetensors"),
                repo.resolve("data/fashion-mnist-b"), 10);
        assertTrue(List.of("ankle_boot", "bag", "sandal", "shirt", "sneaker").contains(predicted), predicted);
    }
}
