package dev.finetune.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.finetune.ErrorKind;
import dev.finetune.FinetuneException;
import dev.finetune.optim.OptimizerSettings;
import dev.finetune.policy.BnPolicy;
import dev.finetune.policy.FreezePolicy;
import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link ConfigLoader}: a full experiment binds, a policy file resolves next to the config, {@code --set} edits the
 * tree, and every mistake a user can make is reported with its YAML path first and the exact wording below.
 */
class ConfigLoaderTest {

    /** Enough for a config to bind; each failure test adds or breaks one thing. */
    private static final String MINIMAL = "model: {arch: resnet18}\noptimizer: {lr: 0.01}\n";

    @TempDir
    Path tmp;

    // ---------------------------------------------------------------- valid configs

    @Test
    void completeExperimentBindsEverySection() throws Exception {
        Path file = resource("config/experiment.yaml");
        ConfigLoader.Loaded loaded = ConfigLoader.load(file, List.of());
        ExperimentConfig c = loaded.config();

        assertEquals("flowers-layer4", c.name());
        assertEquals("resnet18", c.model().arch());
        assertEquals("weights/resnet18.pth", c.model().checkpoint());
        assertEquals("backbone.", c.model().keyPrefix());
        assertEquals(List.of(new ModelConfig.RemapConfig("^head\\.", "fc.")), c.model().remap());
        assertFalse(c.model().strict());
        assertEquals(102, c.model().head().count());
        assertEquals(0.2, c.model().head().dropout());

        OptimizerSettings o = c.optimizer().toSettings();
        assertEquals("sgd", o.name());
        assertEquals(0.01, o.lr());
        assertEquals(0.9, o.momentum());
        assertTrue(o.nesterov());
        assertEquals(1e-4, o.weightDecay());
        assertEquals(List.of(
                new OptimizerSettings.GroupSettings("layer4.*", 0.1, null),
                new OptimizerSettings.GroupSettings("fc.*", null, 0.0)), o.groups());

        assertEquals("imagefolder", c.data().format());
        assertEquals(0.2, c.data().valSplit());
        assertEquals(160, c.data().imageSize());
        assertEquals(183, c.data().resize(), "default resize is image_size * 256/224, rounded");
        assertFalse(c.data().augment());

        assertEquals(6, c.train().epochs());
        assertEquals(16, c.train().batchSize());
        assertEquals(7, c.train().seed());
        assertEquals("cosine", c.train().schedule().name());
        assertEquals(0.5, c.train().schedule().warmupEpochs());
        assertEquals(1e-4, c.train().schedule().minLr());
        assertEquals(List.of(new TrainConfig.UnfreezeConfig(3, List.of("layer3"), 0.05)), c.train().unfreeze());
        assertEquals("val_top1", c.train().earlyStopping().metric());
        assertEquals(2, c.train().earlyStopping().patience());
        assertTrue(c.train().featureCache());
    }

    @Test
    void freezePathResolvesAgainstTheConfigFileNotTheWorkingDirectory() throws Exception {
        // The working directory of the test (toolkit-core/) has no policies/ folder: only the config's folder does.
        assertFalse(Files.exists(Path.of("policies/layer4.yaml")));
        ConfigLoader.Loaded loaded = ConfigLoader.load(resource("config/experiment.yaml"), List.of());
        FreezeConfig f = loaded.config().freeze();
        assertEquals("freeze", f.defaultAction());
        assertEquals("layer4 and the head train", f.description());
        assertEquals("freeze-stats", f.batchnorm());
        assertEquals(List.of(new FreezeConfig.RuleConfig(List.of("layer4", "fc.*"), null)), f.rules());
        // The resolved tree (written into run directories) has the policy inlined, not the path.
        assertTrue(loaded.tree().get("freeze").isObject());
        assertEquals("freeze", loaded.tree().get("freeze").get("default").asText());
        FreezePolicy p = f.toPolicy();
        assertFalse(p.defaultTrain());
        assertEquals(BnPolicy.FREEZE_STATS, p.batchnorm());
        assertEquals("freeze.rules[0]", p.rules().get(0).where());
    }

    @Test
    void freezePathWithParentFolder() throws IOException {
        write("shared/probe.yaml", "default: freeze\nrules:\n  - {train: \"fc.*\"}\n");
        Path cfg = write("experiments/a.yaml", MINIMAL + "freeze: ../shared/probe.yaml\n");
        FreezeConfig f = ConfigLoader.load(cfg, List.of()).config().freeze();
        assertEquals("freeze", f.defaultAction());
        assertEquals(List.of("fc.*"), f.rules().get(0).train());
    }

    @Test
    void relativePathsResolveAgainstTheConfigFolder() throws Exception {
        Path file = resource("config/experiment.yaml");
        ConfigLoader.Loaded loaded = ConfigLoader.load(file, List.of());
        assertEquals(file.getParent().resolve("data/flowers"), loaded.resolve(loaded.config().data().root()));
        assertEquals(Path.of("/abs/data"), loaded.resolve("/abs/data"));
    }

    @Test
    void nameDefaultsToTheFileName() throws IOException {
        Path cfg = write("my-probe.yaml", MINIMAL);
        ConfigLoader.Loaded loaded = ConfigLoader.load(cfg, List.of());
        assertEquals("my-probe", loaded.config().name());
        assertEquals("my-probe", loaded.tree().get("name").asText());
    }

    @Test
    void defaultsWhenSectionsAreAbsent() throws IOException {
        ExperimentConfig c = ConfigLoader.load(write("a.yaml", MINIMAL), List.of()).config();
        assertNull(c.model().checkpoint());
        assertTrue(c.model().strict());
        assertEquals("train", c.freeze().defaultAction());
        assertNull(c.data());
        assertEquals(10, c.train().epochs());
        assertEquals(32, c.train().batchSize());
        assertEquals("constant", c.train().schedule().name());
        OptimizerSettings o = c.optimizer().toSettings();
        assertEquals("sgd", o.name());
        assertEquals(0.0, o.momentum());
        assertEquals(0.9, o.beta1());
        assertEquals(0.999, o.beta2());
        assertEquals(1e-8, o.eps());
    }

    @Test
    void adamwDefaultsToWeightDecay001() throws IOException {
        Path cfg = write("a.yaml", "model: {arch: resnet18}\noptimizer: {name: adamw, lr: 0.001}\n");
        assertEquals(0.01, ConfigLoader.load(cfg, List.of()).config().optimizer().toSettings().weightDecay());
    }

    @Test
    void checkpointNoneMeansFromScratch() throws IOException {
        Path cfg = write("a.yaml", "model: {arch: resnet18, checkpoint: none}\noptimizer: {lr: 0.01}\n");
        assertNull(ConfigLoader.load(cfg, List.of()).config().model().checkpoint());
    }

    // ---------------------------------------------------------------- --set

    @Test
    void setEditsANestedNumberAndKeepsItANumber() throws Exception {
        ConfigLoader.Loaded loaded = ConfigLoader.load(resource("config/experiment.yaml"),
                List.of("optimizer.lr=0.003", "optimizer.momentum=0.5", "train.epochs=9"));
        assertEquals(0.003, loaded.config().optimizer().lr());
        assertEquals(0.5, loaded.config().optimizer().momentum());
        assertEquals(9, loaded.config().train().epochs());
        assertTrue(loaded.tree().get("optimizer").get("lr").isNumber(), "the tree keeps the number a number");
        assertTrue(loaded.tree().get("train").get("epochs").isInt());
    }

    @Test
    void setParsesValuesAsYaml() throws IOException {
        ObjectNode root = tree("optimizer: {lr: 0.01}\n");
        ConfigLoader.applySet(root, "optimizer.lr=1e-3");
        ConfigLoader.applySet(root, "optimizer.nesterov=true");
        ConfigLoader.applySet(root, "optimizer.name=adamw");
        ConfigLoader.applySet(root, "optimizer.betas=[0.8, 0.99]");
        ConfigLoader.applySet(root, "optimizer.eps=");
        assertTrue(root.at("/optimizer/lr").isNumber());
        assertEquals(1e-3, root.at("/optimizer/lr").asDouble());
        assertTrue(root.at("/optimizer/nesterov").isBoolean());
        assertEquals("adamw", root.at("/optimizer/name").asText());
        assertTrue(root.at("/optimizer/betas").isArray());
        assertEquals(0.99, root.at("/optimizer/betas/1").asDouble());
        assertEquals("", root.at("/optimizer/eps").asText(), "an empty value is an empty string");
    }

    @Test
    void setValueThatIsNotValidYamlStaysAString() throws IOException {
        // A leading '*' is a YAML alias; the loader keeps the text as the user typed it.
        ObjectNode root = tree("freeze:\n  rules:\n    - {train: \"fc.*\"}\n");
        ConfigLoader.applySet(root, "freeze.rules[0].train=*.bn?.weight");
        assertEquals("*.bn?.weight", root.at("/freeze/rules/0/train").asText());
    }

    @Test
    void setWithListIndex() throws Exception {
        ConfigLoader.Loaded loaded = ConfigLoader.load(resource("config/experiment.yaml"),
                List.of("optimizer.groups[1].weight_decay=0.05", "freeze.rules[0].train=layer3",
                        "train.unfreeze[0].at_epoch=2"));
        OptimizerConfig.GroupConfig g = loaded.config().optimizer().groups().get(1);
        assertEquals("fc.*", g.match());
        assertEquals(0.05, g.weightDecay());
        assertEquals(List.of("layer3"), loaded.config().freeze().rules().get(0).train());
        assertEquals(2, loaded.config().train().unfreeze().get(0).atEpoch());
    }

    @Test
    void setCreatesAMissingSection() throws IOException {
        Path cfg = write("a.yaml", MINIMAL);
        ConfigLoader.Loaded loaded = ConfigLoader.load(cfg,
                List.of("train.schedule.name=cosine", "train.epochs=3", "freeze.default=freeze",
                        "freeze.rules=[{train: fc.*}]"));
        assertEquals("cosine", loaded.config().train().schedule().name());
        assertEquals(3, loaded.config().train().epochs());
        assertEquals("freeze", loaded.config().freeze().defaultAction());
        assertEquals(List.of("fc.*"), loaded.config().freeze().rules().get(0).train());
    }

    @Test
    void setOverridesAPolicyFileAfterItIsInlined() throws Exception {
        ConfigLoader.Loaded loaded = ConfigLoader.load(resource("config/experiment.yaml"),
                List.of("freeze.batchnorm=auto"));
        assertEquals("auto", loaded.config().freeze().batchnorm());
        assertEquals("freeze", loaded.config().freeze().defaultAction(), "the rest of the file stays");
    }

    @Test
    void setFreezeToAPolicyFileResolvesAgainstTheConfigFile() throws Exception {
        // Swapping the policy from the command line: the path is relative to the config, like one in the file.
        Path cfg = write("exp/a.yaml", MINIMAL + "freeze: {default: train}\n");
        write("exp/policies/probe.yaml", "default: freeze\nrules:\n  - {train: \"fc.*\"}\n");
        ConfigLoader.Loaded loaded = ConfigLoader.load(cfg, List.of("freeze=policies/probe.yaml"));
        assertEquals("freeze", loaded.config().freeze().defaultAction());
        assertEquals(List.of("fc.*"), loaded.config().freeze().rules().get(0).train());
        assertTrue(loaded.tree().get("freeze").isObject(), "inlined in the resolved tree too");
    }

    @Test
    void setFreezeToAPolicyFileThenEditIt() throws Exception {
        ConfigLoader.Loaded edited = ConfigLoader.load(resource("config/experiment.yaml"),
                List.of("freeze=policies/layer4.yaml", "freeze.batchnorm=train"));
        assertEquals("train", edited.config().freeze().batchnorm());
        assertEquals("freeze", edited.config().freeze().defaultAction());
    }

    @Test
    void setFreezeToAMissingPolicyFile() throws IOException {
        Path cfg = write("exp/a.yaml", MINIMAL);
        assertConfigError(() -> ConfigLoader.load(cfg, List.of("freeze=policies/nope.yaml")),
                "freeze: policy file 'policies/nope.yaml' not found (looked at "
                        + tmp.resolve("exp/policies/nope.yaml") + "); paths are relative to the config file");
    }

    @Test
    void setWithoutEqualsSign() throws IOException {
        assertConfigError(() -> ConfigLoader.load(write("a.yaml", MINIMAL), List.of("optimizer.lr")),
                "--set: expected KEY=VALUE (e.g. optimizer.lr=0.003), found 'optimizer.lr'");
        assertConfigError(() -> ConfigLoader.load(write("b.yaml", MINIMAL), List.of("=0.1")),
                "--set: expected KEY=VALUE (e.g. optimizer.lr=0.003), found '=0.1'");
    }

    @Test
    void setIndexOutOfRange() throws Exception {
        assertConfigError(() -> ConfigLoader.load(resource("config/experiment.yaml"),
                        List.of("optimizer.groups[2].lr_mult=0.5")),
                "--set optimizer.groups[2].lr_mult: groups[2] does not exist in the config");
    }

    @Test
    void setIndexOnSomethingThatIsNotAList() throws IOException {
        assertConfigError(() -> ConfigLoader.load(write("a.yaml", MINIMAL), List.of("optimizer.lr[0]=1")),
                "--set optimizer.lr[0]: lr[0] does not exist in the config");
    }

    @Test
    void setUnclosedIndex() throws IOException {
        assertConfigError(() -> ConfigLoader.load(write("a.yaml", MINIMAL), List.of("optimizer.groups[0.match=x")),
                "--set optimizer.groups[0.match: bad index in 'groups[0'");
    }

    @Test
    void setThroughAScalar() throws IOException {
        assertConfigError(() -> ConfigLoader.load(write("a.yaml", MINIMAL), List.of("optimizer.lr.value=1")),
                "--set optimizer.lr.value: 'value' is inside a value that is not a mapping");
    }

    @Test
    void setNonNumericOrNegativeIndex() throws IOException {
        Path cfg = write("a.yaml", MINIMAL + "freeze:\n  rules:\n    - {train: \"fc.*\"}\n");
        assertConfigError(() -> ConfigLoader.load(cfg, List.of("freeze.rules[x].train=layer4")),
                "--set freeze.rules[x].train: bad index in 'rules[x]'; expected [0], [1], ...");
        assertConfigError(() -> ConfigLoader.load(cfg, List.of("freeze.rules[-1].train=layer4")),
                "--set freeze.rules[-1].train: bad index in 'rules[-1]'; expected [0], [1], ...");
    }

    @Test
    void setProducingAnUnknownKeyIsRejectedAtBind() throws IOException {
        Path cfg = write("a.yaml", MINIMAL);
        FinetuneException e = assertThrows(FinetuneException.class,
                () -> ConfigLoader.load(cfg, List.of("optimizer.learning_rate=0.1")));
        assertTrue(e.getMessage().startsWith("optimizer.learning_rate: unknown key 'learning_rate'"), e.getMessage());
    }

    // ---------------------------------------------------------------- failures, one per user mistake

    @Test
    void unknownTopLevelKey() throws IOException {
        Path cfg = write("a.yaml", MINIMAL + "optimiser: {lr: 0.1}\n");
        assertConfigError(() -> ConfigLoader.load(cfg, List.of()),
                "optimiser: unknown key 'optimiser'; known keys: data, freeze, model, name, optimizer, train (in "
                        + cfg + ")");
    }

    @Test
    void unknownNestedKeyNamesThePathAndTheKnownKeys() throws IOException {
        Path cfg = write("a.yaml", MINIMAL + "freeze:\n  default: freeze\n  rules:\n    - {tarin: \"fc.*\"}\n");
        assertConfigError(() -> ConfigLoader.load(cfg, List.of()),
                "freeze.rules[0].tarin: unknown key 'tarin'; known keys: freeze, train (in " + cfg + ")");
    }

    @Test
    void unknownKeyInsideAPolicyFile() throws IOException {
        write("policies/p.yaml", "default: freeze\nrulez: []\n");
        Path cfg = write("a.yaml", MINIMAL + "freeze: policies/p.yaml\n");
        FinetuneException e = assertThrows(FinetuneException.class, () -> ConfigLoader.load(cfg, List.of()));
        assertTrue(e.getMessage().startsWith("freeze.rulez: unknown key 'rulez'; known keys: batchnorm, default,"
                + " description, frozen_stages, rules"), e.getMessage());
    }

    @Test
    void unknownKeyInsideAPolicyFileNamesThePolicyFile() throws IOException {
        Path policy = write("policies/p.yaml", "default: freeze\nrulez: []\n");
        Path cfg = write("a.yaml", MINIMAL + "freeze: policies/p.yaml\n");
        FinetuneException e = assertThrows(FinetuneException.class, () -> ConfigLoader.load(cfg, List.of()));
        assertTrue(e.getMessage().endsWith("(in " + policy + ")"), e.getMessage());
    }

    @Test
    void wrongTypeNamesThePathAndTheValue() throws IOException {
        Path cfg = write("a.yaml", "model: {arch: resnet18}\noptimizer: {lr: \"abc\"}\n");
        FinetuneException e = assertThrows(FinetuneException.class, () -> ConfigLoader.load(cfg, List.of()));
        assertEquals(ErrorKind.CONFIG, e.kind());
        assertTrue(e.getMessage().startsWith("optimizer.lr: 'abc' is not a number"), e.getMessage());
        assertTrue(e.getMessage().endsWith("(in " + cfg + ")"), e.getMessage());
    }

    @Test
    void wrongTypeMessageIsGrammatical() throws IOException {
        Path cfg = write("a.yaml", "model: {arch: resnet18}\noptimizer: {lr: \"abc\"}\n");
        assertConfigError(() -> ConfigLoader.load(cfg, List.of()),
                "optimizer.lr: 'abc' is not a number (in " + cfg + ")");
    }

    @Test
    void sectionThatIsNotAMapping() throws IOException {
        Path cfg = write("a.yaml", "model: resnet18\noptimizer: {lr: 0.01}\n");
        FinetuneException e = assertThrows(FinetuneException.class, () -> ConfigLoader.load(cfg, List.of()));
        assertEquals(ErrorKind.CONFIG, e.kind());
        assertTrue(e.getMessage().startsWith("model: "), e.getMessage());
    }

    @Test
    void nonPositiveLearningRate() throws IOException {
        Path cfg = write("a.yaml", "model: {arch: resnet18}\noptimizer: {lr: -1}\n");
        assertConfigError(() -> loadAndBuild(cfg), "optimizer.lr: must be > 0, found -1.0");
        Path zero = write("b.yaml", "model: {arch: resnet18}\noptimizer: {lr: 0}\n");
        assertConfigError(() -> loadAndBuild(zero), "optimizer.lr: must be > 0, found 0.0");
    }

    @Test
    void momentumOfOneOrMore() throws IOException {
        Path cfg = write("a.yaml", "model: {arch: resnet18}\noptimizer: {lr: 0.1, momentum: 1.0}\n");
        assertConfigError(() -> loadAndBuild(cfg), "optimizer.momentum: must be in [0, 1), found 1.0");
    }

    @Test
    void missingLearningRate() throws IOException {
        Path cfg = write("a.yaml", "model: {arch: resnet18}\noptimizer: {name: sgd, momentum: 0.9}\n");
        assertConfigError(() -> loadAndBuild(cfg), "optimizer.lr: required (e.g. lr: 0.01)");
    }

    @Test
    void unknownOptimizerName() throws IOException {
        Path cfg = write("a.yaml", "model: {arch: resnet18}\noptimizer: {name: rmsprop, lr: 0.1}\n");
        assertConfigError(() -> loadAndBuild(cfg),
                "optimizer.name: unknown optimizer 'rmsprop'; choose sgd, adam or adamw");
    }

    @Test
    void invalidBetas() throws IOException {
        Path cfg = write("a.yaml", "model: {arch: resnet18}\noptimizer: {name: adam, lr: 0.1, betas: [0.9]}\n");
        assertConfigError(() -> loadAndBuild(cfg),
                "optimizer.betas: must be two numbers, e.g. [0.9, 0.999], found [0.9]");
    }

    @Test
    void groupWithoutMatch() throws IOException {
        Path cfg = write("a.yaml", "model: {arch: resnet18}\noptimizer: {lr: 0.1, groups: [{lr_mult: 0.1}]}\n");
        assertConfigError(() -> loadAndBuild(cfg), "optimizer.groups[0].match: required (a name pattern)");
    }

    @Test
    void emptyGroupEntry() throws IOException {
        Path cfg = write("a.yaml", "model: {arch: resnet18}\noptimizer:\n  lr: 0.1\n  groups:\n    -\n");
        assertConfigError(() -> loadAndBuild(cfg),
                "optimizer.groups[0]: empty entry; write {match: \"layer4.*\", lr_mult: 0.1}");
    }

    @Test
    void policyPathThatIsNotAPath() throws IOException {
        Path cfg = write("a.yaml", MINIMAL + "freeze: \"bad\\0path.yaml\"\n");
        assertConfigError(() -> ConfigLoader.load(cfg, List.of()),
                "freeze: policy file 'bad\0path.yaml' is not a valid path (Nul character not allowed)");
    }

    @Test
    void headClassesNotANumber() throws IOException {
        Path cfg = write("a.yaml", "model: {arch: resnet18, head: {classes: ten}}\noptimizer: {lr: 0.1}\n");
        assertConfigError(() -> ConfigLoader.load(cfg, List.of()),
                "model.head.classes: must be a whole number or 'auto', found 'ten'");
    }

    @Test
    void headClassesBelowOne() throws IOException {
        Path cfg = write("a.yaml", "model: {arch: resnet18, head: {classes: 0}}\noptimizer: {lr: 0.1}\n");
        assertConfigError(() -> ConfigLoader.load(cfg, List.of()), "model.head.classes: must be >= 1, found 0");
    }

    @Test
    void headClassesAutoAndCount() throws IOException {
        Path cfg = write("a.yaml", "model: {arch: resnet18, head: {classes: auto}}\noptimizer: {lr: 0.1}\n");
        assertTrue(ConfigLoader.load(cfg, List.of()).config().model().head().auto());
        Path n = write("b.yaml", "model: {arch: resnet18, head: {classes: 7}}\noptimizer: {lr: 0.1}\n");
        ModelConfig.HeadConfig h = ConfigLoader.load(n, List.of()).config().model().head();
        assertFalse(h.auto());
        assertEquals(7, h.count());
    }

    @Test
    void headDropoutOutOfRange() throws IOException {
        Path cfg = write("a.yaml", "model: {arch: resnet18, head: {classes: 3, dropout: 1}}\noptimizer: {lr: 0.1}\n");
        assertConfigError(() -> ConfigLoader.load(cfg, List.of()), "model.head.dropout: must be in [0, 1), found 1.0");
    }

    @Test
    void batchnormInvalidValue() throws IOException {
        Path cfg = write("a.yaml", MINIMAL + "freeze: {default: train, batchnorm: frozen}\n");
        assertConfigError(() -> loadAndBuild(cfg),
                "freeze.batchnorm: unknown BatchNorm mode 'frozen'; choose auto, train, freeze-stats or freeze-all");
    }

    @Test
    void freezeDefaultInvalidValue() throws IOException {
        Path cfg = write("a.yaml", MINIMAL + "freeze: {default: frozen}\n");
        assertConfigError(() -> ConfigLoader.load(cfg, List.of()),
                "freeze.default: must be 'train' or 'freeze', found 'frozen'");
    }

    @Test
    void ruleWithBothTrainAndFreeze() throws IOException {
        Path cfg = write("a.yaml", MINIMAL + "freeze:\n  rules:\n    - {train: fc.*, freeze: layer1}\n");
        assertConfigError(() -> loadAndBuild(cfg),
                "freeze.rules[0]: a rule has exactly one of 'train' or 'freeze', e.g. {train: \"fc.*\"}");
    }

    /**
     * The optimizer and freeze sections are only checked when something calls {@code toSettings()} /
     * {@code toPolicy()}; the tests above go through that path. This one pins down that {@code load} itself reports
     * them, which the project style ("validated at load time") asks for.
     */
    @Test
    void optimizerAndFreezeErrorsAreReportedByLoadItself() throws IOException {
        Path lr = write("a.yaml", "model: {arch: resnet18}\noptimizer: {lr: -1}\n");
        assertConfigError(() -> ConfigLoader.load(lr, List.of()), "optimizer.lr: must be > 0, found -1.0");
        Path missing = write("b.yaml", "model: {arch: resnet18}\noptimizer: {momentum: 0.9}\n");
        assertConfigError(() -> ConfigLoader.load(missing, List.of()), "optimizer.lr: required (e.g. lr: 0.01)");
        Path bn = write("c.yaml", MINIMAL + "freeze: {batchnorm: frozen}\n");
        assertConfigError(() -> ConfigLoader.load(bn, List.of()),
                "freeze.batchnorm: unknown BatchNorm mode 'frozen'; choose auto, train, freeze-stats or freeze-all");
    }

    @Test
    void invalidYamlSyntaxGivesLineAndColumn() throws IOException {
        Path cfg = write("a.yaml", "model: {arch: resnet18}\noptimizer:\n  lr: 0.1\n   momentum: 0.9\n");
        FinetuneException e = assertThrows(FinetuneException.class, () -> ConfigLoader.load(cfg, List.of()));
        assertEquals(ErrorKind.CONFIG, e.kind());
        assertTrue(e.getMessage().startsWith(cfg + ":4:12: not valid YAML: "), e.getMessage());
    }

    @Test
    void unclosedFlowMappingGivesLineAndColumn() throws IOException {
        Path cfg = write("a.yaml", "model: {arch: resnet18\noptimizer: {lr: 0.1}\n");
        FinetuneException e = assertThrows(FinetuneException.class, () -> ConfigLoader.load(cfg, List.of()));
        assertTrue(e.getMessage().startsWith(cfg + ":2:10: not valid YAML: while parsing a flow mapping"),
                e.getMessage());
    }

    @Test
    void topLevelThatIsNotAMapping() throws IOException {
        Path cfg = write("a.yaml", "- model\n- optimizer\n");
        assertConfigError(() -> ConfigLoader.load(cfg, List.of()),
                cfg + ": expected a YAML mapping at the top (model:, optimizer:, …)");
    }

    @Test
    void missingConfigFile() {
        Path cfg = tmp.resolve("nope.yaml");
        assertConfigError(() -> ConfigLoader.load(cfg, List.of()), "config file not found: " + cfg);
    }

    @Test
    void missingPolicyFile() throws IOException {
        Path cfg = write("exp/a.yaml", MINIMAL + "freeze: policies/missing.yaml\n");
        assertConfigError(() -> ConfigLoader.load(cfg, List.of()),
                "freeze: policy file 'policies/missing.yaml' not found (looked at "
                        + tmp.resolve("exp/policies/missing.yaml") + "); paths are relative to the config file");
    }

    @Test
    void missingModelOrOptimizerSection() throws IOException {
        assertConfigError(() -> ConfigLoader.load(write("a.yaml", "optimizer: {lr: 0.1}\n"), List.of()),
                "model: required: at least {arch: resnet18}");
        assertConfigError(() -> ConfigLoader.load(write("b.yaml", "model: {arch: resnet18}\n"), List.of()),
                "optimizer: required: e.g. {name: sgd, lr: 0.01, momentum: 0.9}");
    }

    @Test
    void unfreezeAfterTheLastEpoch() throws IOException {
        Path cfg = write("a.yaml", MINIMAL + "train:\n  epochs: 3\n  unfreeze:\n    - {at_epoch: 5, match: layer4}\n");
        assertConfigError(() -> ConfigLoader.load(cfg, List.of()),
                "train.unfreeze[0].at_epoch: is 5 but train.epochs is 3: this step would never run");
    }

    @Test
    void unfreezeWithoutMatch() throws IOException {
        Path cfg = write("a.yaml", MINIMAL + "train:\n  epochs: 3\n  unfreeze:\n    - {at_epoch: 2}\n");
        assertConfigError(() -> ConfigLoader.load(cfg, List.of()),
                "train.unfreeze[0].match: required: the names to unfreeze, e.g. \"layer4\"");
    }

    @Test
    void unknownSchedule() throws IOException {
        Path cfg = write("a.yaml", MINIMAL + "train: {schedule: {name: linear}}\n");
        assertConfigError(() -> ConfigLoader.load(cfg, List.of()),
                "train.schedule.name: unknown schedule 'linear'; choose constant, step, cosine or onecycle");
    }

    @Test
    void stepScheduleWithoutStepSize() throws IOException {
        Path cfg = write("a.yaml", MINIMAL + "train: {schedule: {name: step}}\n");
        assertConfigError(() -> ConfigLoader.load(cfg, List.of()),
                "train.schedule.step_size: required for the step schedule, >= 1");
    }

    @Test
    void epochsBelowOne() throws IOException {
        Path cfg = write("a.yaml", MINIMAL + "train: {epochs: 0}\n");
        assertConfigError(() -> ConfigLoader.load(cfg, List.of()), "train.epochs: must be >= 1, found 0");
    }

    @Test
    void negativeRecoveryInterval() throws IOException {
        Path cfg = write("a.yaml", MINIMAL + "train: {recovery_interval: -5}\n");
        assertConfigError(() -> ConfigLoader.load(cfg, List.of()),
                "train.recovery_interval: must be >= 0 (0: off), found -5");
        assertEquals(0, ConfigLoader.load(write("b.yaml", MINIMAL), List.of()).config().train().recoveryInterval());
    }

    @Test
    void valEveryBelowOne() throws IOException {
        Path cfg = write("a.yaml", MINIMAL + "train: {val_every: 0}\n");
        assertConfigError(() -> ConfigLoader.load(cfg, List.of()),
                "train.val_every: must be >= 1 (epochs between validations), found 0");
    }

    @Test
    void valSplitOutOfRange() throws IOException {
        Path cfg = write("a.yaml", MINIMAL + "data: {root: data, val_split: 1.5}\n");
        assertConfigError(() -> ConfigLoader.load(cfg, List.of()), "data.val_split: must be in (0, 1), found 1.5");
        Path zero = write("b.yaml", MINIMAL + "data: {root: data, val_split: 0}\n");
        assertConfigError(() -> ConfigLoader.load(zero, List.of()), "data.val_split: must be in (0, 1), found 0.0");
    }

    @Test
    void unknownDataFormat() throws IOException {
        Path cfg = write("a.yaml", MINIMAL + "data: {format: csv, root: data}\n");
        assertConfigError(() -> ConfigLoader.load(cfg, List.of()),
                "data.format: must be 'imagefolder' or 'idx', found 'csv'");
    }

    @Test
    void imagefolderWithoutRoot() throws IOException {
        Path cfg = write("a.yaml", MINIMAL + "data: {image_size: 64}\n");
        assertConfigError(() -> ConfigLoader.load(cfg, List.of()),
                "data.root: required for imagefolder data: a folder with train/ and val/ (or class folders and"
                        + " data.val_split)");
    }

    @Test
    void idxWithoutDir() throws IOException {
        Path cfg = write("a.yaml", MINIMAL + "data: {format: idx, idx: {classes: [0, 1]}}\n");
        assertConfigError(() -> ConfigLoader.load(cfg, List.of()),
                "data.idx.dir: required: the folder with the IDX files");
    }

    @Test
    void loadPolicyReadsAStandalonePolicyFile() throws IOException {
        Path p = write("p.yaml", "default: freeze\nfrozen_stages: 2\nrules:\n  - {train: [\"layer4\", \"fc.*\"]}\n"
                + "  - {freeze: \"re:^layer4\\\\.0\\\\.\"}\nbatchnorm: freeze-all\n");
        FreezePolicy policy = ConfigLoader.loadPolicy(p).toPolicy();
        assertFalse(policy.defaultTrain());
        assertEquals(2, policy.frozenStages());
        assertEquals(BnPolicy.FREEZE_ALL, policy.batchnorm());
        assertEquals("freeze.rules[0].train[1]", policy.rules().get(0).patterns().get(1).where());
        assertEquals("freeze.rules[1].freeze", policy.rules().get(1).patterns().get(0).where());
        assertEquals("re:^layer4\\.0\\.", policy.rules().get(1).patterns().get(0).source());
    }

    @Test
    void shippedLinearProbePolicyLoads() {
        Path p = repoRoot().resolve("configs/policies/linear-probe.yaml");
        FreezePolicy policy = ConfigLoader.loadPolicy(p).toPolicy();
        assertFalse(policy.defaultTrain());
        assertEquals("default: freeze, {train: fc.*}, batchnorm: auto", policy.describe());
    }

    @Test
    void valuesThatWouldPassUnnoticedAreRefused() throws IOException {
        String[][] cases = {
            {"train: {threads: 3000}", "train.threads: must be 0 (all cores) to 256, found 3000"},
            {"train: {schedule: {name: cosine, min_lr: NaN}}", "train.schedule.min_lr: must be a number >= 0, found NaN"},
            {"train: {schedule: {name: onecycle, max_lr_mult: NaN}}",
                "train.schedule.max_lr_mult: must be a number > 0, found NaN"},
            {"train: {schedule: {name: step, step_size: 1, gamma: -1}}",
                "train.schedule.gamma: must be in (0, 1] (the factor the lr is multiplied by at each step), found -1.0"},
            {"train: {early_stopping: {min_delta: NaN}}",
                "train.early_stopping.min_delta: must be a number >= 0, found NaN"},
            {"train: {schedule: {warmup_epochs: Infinity}}",
                "train.schedule.warmup_epochs: must be a number >= 0, found Infinity"},
        };
        for (String[] c : cases) {
            Path cfg = write("v.yaml", MINIMAL + c[0] + "\n");
            FinetuneException e = assertThrows(FinetuneException.class, () -> loadAndBuild(cfg), c[0]);
            assertEquals(ErrorKind.CONFIG, e.kind(), c[0]);
            assertTrue(e.getMessage().startsWith(c[1]), e.getMessage());
        }
    }

    @Test
    void aKeyGivenTwiceIsAnError() throws IOException {
        Path cfg = write("dup.yaml", "model: {arch: resnet18}\noptimizer: {lr: 0.01, lr: 0.1}\n");
        FinetuneException e = assertThrows(FinetuneException.class, () -> loadAndBuild(cfg));
        assertEquals(ErrorKind.CONFIG, e.kind());
        assertTrue(e.getMessage().contains("Duplicate field 'lr'"), e.getMessage());
        assertTrue(e.getMessage().contains("dup.yaml:2:"), "names the file and line: " + e.getMessage());
    }

    // ---------------------------------------------------------------- helpers

    /** Loads and builds what the trainer builds from the config (where optimizer and policy are checked today). */
    private static void loadAndBuild(Path cfg) {
        ExperimentConfig c = ConfigLoader.load(cfg, List.of()).config();
        c.optimizer().toSettings();
        c.freeze().toPolicy();
    }

    private static void assertConfigError(Executable body, String message) {
        FinetuneException e = assertThrows(FinetuneException.class, body);
        assertEquals(message, e.getMessage());
        assertEquals(ErrorKind.CONFIG, e.kind(), "error kind (exit code 3)");
    }

    private Path write(String name, String text) throws IOException {
        Path p = tmp.resolve(name);
        Files.createDirectories(p.getParent());
        Files.writeString(p, text);
        return p;
    }

    private static ObjectNode tree(String yaml) throws IOException {
        JsonNode n = ConfigLoader.yaml().readTree(yaml);
        return (ObjectNode) n;
    }

    private static Path resource(String name) throws URISyntaxException {
        return Path.of(ConfigLoaderTest.class.getClassLoader().getResource(name).toURI());
    }

    private static Path repoRoot() {
        Path p = Path.of("").toAbsolutePath();
        while (p != null && !Files.isDirectory(p.resolve("configs/policies"))) {
            p = p.getParent();
        }
        return p;
    }
}
