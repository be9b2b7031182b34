package dev.finetune.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.finetune.testing.TorchReference;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;

/** The config reference covers every key of the config records, and docs/config.md is what it generates. */
class ConfigReferenceTest {
    @Test
    void everyKeyHasOneLineAndEveryLineAKey() {
        List<ConfigReference.Key> keys = ConfigReference.keys();
        Set<String> paths = new HashSet<>();
        Set<String> undocumented = new TreeSet<>();
        for (ConfigReference.Key k : keys) {
            paths.add(k.path());
            if (k.meaning().isEmpty()) {
                undocumented.add(k.path());
            }
        }
        assertTrue(undocumented.isEmpty(), "keys without a line in reference.properties: " + undocumented);
        Map<String, String> all = ConfigReference.meanings();
        Set<String> stale = new TreeSet<>();
        for (String k : all.keySet()) {
            String key = k.endsWith("@default") ? k.substring(0, k.length() - "@default".length()) : k;
            if (!paths.contains(key)) {
                stale.add(k);
            }
        }
        assertTrue(stale.isEmpty(), "lines in reference.properties for keys that do not exist: " + stale);
        assertTrue(keys.size() > 70, "every key of every section: " + keys.size());
    }

    @Test
    void defaultsComeFromTheRecords() {
        Map<String, ConfigReference.Key> byPath = new java.util.HashMap<>();
        ConfigReference.keys().forEach(k -> byPath.put(k.path(), k));
        assertEquals("`10`", byPath.get("train.epochs").defaultValue());
        assertEquals("`224`", byPath.get("data.image_size").defaultValue());
        assertEquals("`constant`", byPath.get("train.schedule.name").defaultValue());
        assertEquals("`[0.485, 0.456, 0.406]`", byPath.get("data.mean").defaultValue());
        assertEquals("required", byPath.get("optimizer.lr").defaultValue());
        assertEquals("integer", byPath.get("train.epochs").type());
        assertEquals("list of texts", byPath.get("freeze.rules[].train").type());
    }

    @Test
    void docsConfigMdIsCurrent() throws Exception {
        Path doc = TorchReference.repoRoot().resolve("docs/config.md");
        String expected = ConfigReference.markdown();
        assertTrue(Files.exists(doc), "docs/config.md missing: run finetune config --reference > docs/config.md");
        assertEquals(expected, Files.readString(doc),
                "docs/config.md is stale: regenerate it with ./finetune config --reference > docs/config.md");
    }
}
