package dev.finetune.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.finetune.ErrorKind;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code finetune features} then {@code train --set train.feature_store=DIR}: the same losses and metrics as the run
 * that computes its features; a store of another key refused before any run folder exists; a cut past the frozen
 * prefix a usage error.
 */
class FeatureStoreCliTest {
    @TempDir
    Path tmp;

    @Test
    void trainingFromTheStoreEqualsTrainingWithoutIt() throws Exception {
        String config = Cli.repo().resolve("configs/quickstart.yaml").toString();
        Path store = tmp.resolve("store");
        Cli.Result f = Cli.run("features", "-c", config, "--out", store.toString());
        assertEquals(0, f.code(), f.err());
        assertTrue(f.out().contains("stored the output of layer4"), f.out());
        assertTrue(Files.isRegularFile(store.resolve("manifest.json")) && Files.isRegularFile(store.resolve(
                "train.parquet")) && Files.isRegularFile(store.resolve("val.parquet")));

        Cli.Result plain = Cli.run("train", "-c", config, "--set", "train.epochs=1", "--run-dir",
                tmp.resolve("plain").toString(), "--quiet");
        assertEquals(0, plain.code(), plain.err());
        Cli.Result stored = Cli.run("train", "-c", config, "--set", "train.epochs=1", "--set",
                "train.feature_store=" + store, "--run-dir", tmp.resolve("stored").toString(), "--quiet");
        assertEquals(0, stored.code(), stored.err());
        List<String> a = Files.readAllLines(tmp.resolve("plain/metrics.csv"));
        List<String> b = Files.readAllLines(tmp.resolve("stored/metrics.csv"));
        assertEquals(a.size(), b.size());
        for (int i = 1; i < a.size(); i++) {
            // epoch, train_loss, val_loss, val_top1, val_top5, val_macro_f1, lr: equal; timings differ.
            assertEquals(String.join(",", List.of(a.get(i).split(",")).subList(0, 7)),
                    String.join(",", List.of(b.get(i).split(",")).subList(0, 7)), "epoch " + i);
        }

        Path refused = tmp.resolve("refused");
        Cli.Result other = Cli.run("train", "-c", config, "--set", "data.resize=36", "--set",
                "train.feature_store=" + store, "--run-dir", refused.toString(), "--quiet");
        assertEquals(ErrorKind.CONFIG.exitCode(), other.code(), other.err());
        assertTrue(other.err().contains("train.feature_store") && other.err().contains("preprocessing: store has"),
                other.err());
        assertFalse(Files.exists(refused), "refused before the run folder is made");

        Cli.Result cut = Cli.run("features", "-c", config, "--set", "freeze=policies/last-stage.yaml", "--cut",
                "layer4", "--out", tmp.resolve("x").toString());
        assertEquals(ErrorKind.USAGE.exitCode(), cut.code(), cut.err());
        assertTrue(cut.err().contains("--cut 'layer4' is past the frozen prefix, which ends at layer3"), cut.err());
    }

    /** What makes a prefix unfit for a store is a config error naming who needs it and why; a bad --cut is usage. */
    @Test
    void unfitPrefixesAndBadOptionsAreRefusedWithTheirFix() {
        String config = Cli.repo().resolve("configs/quickstart.yaml").toString();
        String out = tmp.resolve("never").toString();
        Cli.Result augment = Cli.run("features", "-c", config, "--set", "data.augment=true", "--out", out);
        assertEquals(ErrorKind.CONFIG.exitCode(), augment.code(), augment.err());
        assertTrue(augment.err().contains("finetune features: needs data.augment: false"), augment.err());
        Cli.Result full = Cli.run("features", "-c", config, "--set", "freeze=policies/full.yaml", "--out", out);
        assertEquals(ErrorKind.CONFIG.exitCode(), full.code(), full.err());
        assertTrue(full.err().contains("needs a frozen prefix, but the freeze policy trains the first stage"),
                full.err());
        Cli.Result cut = Cli.run("features", "-c", config, "--cut", "layer9", "--out", out);
        assertEquals(ErrorKind.USAGE.exitCode(), cut.code(), cut.err());
        assertTrue(cut.err().contains("--cut 'layer9' is not a stage before the head; stages: [stem, layer1"),
                cut.err());
        Cli.Result noCache = Cli.run("train", "-c", config, "--set", "train.feature_store=" + out, "--set",
                "train.feature_cache=false", "--run-dir", out);
        assertEquals(ErrorKind.CONFIG.exitCode(), noCache.code(), noCache.err());
        assertTrue(noCache.err().contains("train.feature_store: needs train.feature_cache: true"), noCache.err());
        Cli.Result notAStore = Cli.run("train", "-c", config, "--set", "train.feature_store=" + tmp, "--run-dir",
                out);
        assertEquals(ErrorKind.CONFIG.exitCode(), notAStore.code(), notAStore.err());
        assertTrue(notAStore.err().contains("is not a feature store (no manifest.json); write one with: finetune"
                + " features"), notAStore.err());
        assertFalse(Files.exists(tmp.resolve("never")), "nothing written");
    }
}
