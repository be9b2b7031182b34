package dev.finetune.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.finetune.inspect.InspectReport;
import dev.finetune.run.Assembler;
import dev.finetune.testing.TorchReference;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * Every shipped experiment config loads, and each family's config builds its architecture with a head-only policy
 * (offline: the torchvision weights are swapped for torchvision's initialization, which has the same names).
 */
class ShippedConfigsTest {

    @Test
    void everyExperimentConfigLoads() throws Exception {
        Path configs = TorchReference.repoRoot().resolve("configs");
        List<Path> files;
        try (Stream<Path> s = Files.walk(configs)) {
            files = s.filter(p -> p.toString().endsWith(".yaml"))
                    .filter(p -> !p.startsWith(configs.resolve("policies"))).sorted().toList();
        }
        assertTrue(files.size() >= 15, "configs found: " + files);
        for (Path f : files) {
            ConfigLoader.load(f, List.of());
        }
    }

    @Test
    void eachFamilyConfigBuildsItsArchitectureWithAHeadOnlyPolicy() throws Exception {
        Path dir = TorchReference.repoRoot().resolve("configs/families");
        List<Path> files;
        try (Stream<Path> s = Files.list(dir)) {
            files = s.filter(p -> p.toString().endsWith(".yaml")).sorted().toList();
        }
        assertEquals(7, files.size(), files.toString());
        for (Path f : files) {
            String arch = f.getFileName().toString().replace(".yaml", "");
            ConfigLoader.Loaded loaded = ConfigLoader.load(f, List.of("model.checkpoint=none"));
            InspectReport r = Assembler.inspect(loaded, 5);
            assertEquals(arch, r.arch());
            assertEquals("head", r.frontier().firstTrainableStage(), arch);
            assertTrue(r.frontier().cacheable(), arch + ": the frozen prefix is cached");
            assertFalse(r.rows().stream().anyMatch(x -> x.trainable() && !x.decidedBy().contains("stage:head")),
                    arch + ": only the head stage trains");
        }
    }
}
