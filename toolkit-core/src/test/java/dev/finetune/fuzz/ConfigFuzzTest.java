package dev.finetune.fuzz;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.databind.node.TextNode;
import dev.finetune.config.ConfigLoader;
import dev.finetune.config.ExperimentConfig;
import dev.finetune.config.FreezeConfig;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Random;
import java.util.function.Function;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link ConfigLoader#load(Path, List)} and {@link ConfigLoader#loadPolicy(Path)} on hostile YAML and hostile
 * {@code --set} edits: a hand-made corpus (alias bombs, recursive anchors, deep nesting, tags naming Java and Python
 * classes, odd numbers), a wrong value of every type at every key of a complete config, and seeded random text
 * mutations.
 *
 * <p>A read here is the load followed by the checks a run makes before training ({@link FreezeConfig#toPolicy()},
 * {@code OptimizerConfig.toSettings()}), so an exception that escapes those is caught too. Clean errors name the
 * file, or at least the YAML key (the config records validate values in their constructors, which do not know the
 * file); see {@link FuzzRun}.
 */
class ConfigFuzzTest {
    private static final long CONFIG_SEED = 0x5EED_0006L;
    private static final long POLICY_SEED = 0x5EED_0007L;
    private static final int CONFIG_MUTANTS = 800;
    private static final int POLICY_MUTANTS = 400;

    /** Values of the wrong type (or an unusual spelling of the right one) for every key. */
    private static final List<String> WRONG_VALUES = List.of(
            "\"text\"", "-1", "0", "1e309", "99999999999999999999", "-99999999999999999999", "0.5", "true", "null",
            "[]", "[1, a]", "{}", "{x: 1}", "\"\"", ".nan", "-.inf", "0x7fffffff", "!!binary AAAA", "*alias",
            "\"" + "x".repeat(10_000) + "\"");

    /** Lines a mutation may insert: YAML features a config never needs. */
    private static final List<String> ODD_LINES = List.of(
            "anchor: &a [1, 2]", "alias: *a", "<<: *a", "? [complex, key]\n: 1", "--- ", "...", "%YAML 1.1",
            "%TAG ! tag:example.com,2000:", "tagged: !!python/object/apply:os.system [\"true\"]",
            "java: !!java.lang.ProcessBuilder [[\"true\"]]", "bin: !!binary AAAA", "\t- tab", "x: |\n  block",
            "empty:", "null: ~", "'quoted key': 1", "\"\\u0000\": nul", "dup: 1\ndup: 2");

    private static final ObjectMapper YAML = ConfigLoader.yaml();

    @TempDir
    Path dir;

    Path seed;
    Path policySeed;

    @BeforeEach
    void writeSeeds() throws IOException {
        seed = Files.write(dir.resolve("experiment.yaml"), Corpus.resource("experiment.yaml"));
        policySeed = Files.write(dir.resolve("policy.yaml"), Corpus.resource("policy.yaml"));
    }

    @Test
    void seedsAreValid() {
        ExperimentConfig c = loadAndCheck(seed, List.of());
        assertEquals("fuzz-seed", c.name());
        assertEquals(2, c.freeze().rules().size());
        assertEquals(1, c.train().unfreeze().size());
        assertEquals(3, ConfigLoader.loadPolicy(policySeed).toPolicy().rules().size());
    }

    @Test
    void handMadeCorpus() throws IOException {
        Path marker = dir.resolve("MARKER");
        String minimal = "model: {arch: resnet18}\noptimizer: {lr: 0.1}\n";
        Corpus corpus = new Corpus(true)
                .error("missing file", "config file not found", f -> { })
                .error("a directory", "config file not found", Files::createDirectory)
                .error("zero-length", "expected a YAML mapping at the top", f -> Files.write(f, new byte[0]))
                .error("only comments", "expected a YAML mapping at the top", f -> Files.writeString(f, "# x\n"))
                .error("a scalar", "expected a YAML mapping at the top", f -> Files.writeString(f, "resnet18\n"))
                .error("a list", "expected a YAML mapping at the top", f -> Files.writeString(f, "- model\n"))
                .error("tab indentation", "not valid YAML", f -> Files.writeString(f, "model:\n\tarch: x\n"))
                .error("unclosed flow mapping", "not valid YAML", f -> Files.writeString(f, "model: {arch: x\n"))
                .error("binary garbage", "not valid YAML | expected a YAML mapping", f -> Files.write(f,
                        Corpus.resource("seed.pth")))
                .error("NUL bytes", "not valid YAML", f -> Files.write(f, new byte[] {'a', ':', ' ', 0, 0, '\n'}))
                .any("UTF-8 byte order mark", f -> Files.write(f, PthFuzzTest.concat(
                        new byte[] {(byte) 0xEF, (byte) 0xBB, (byte) 0xBF}, minimal.getBytes(StandardCharsets.UTF_8))))
                .any("UTF-16 with byte order mark", f -> Files.write(f, PthFuzzTest.concat(
                        new byte[] {(byte) 0xFF, (byte) 0xFE}, minimal.getBytes(StandardCharsets.UTF_16LE))))
                .error("billion laughs (alias bomb)", "unknown key 'lol0'", f -> Files.writeString(f,
                        billionLaughs() + minimal))
                .error("alias bomb under a known key", "freeze.description: expected a string", f ->
                        Files.writeString(f, minimal + "freeze:\n  description:\n"
                                + billionLaughs().replaceAll("(?m)^", "    ")))
                .error("an alias is not expanded", "optimizer.momentum: 'x' is not a", f ->
                        Files.writeString(f, "model: {arch: resnet18}\noptimizer: {lr: &x 0.1, momentum: *x}\n"))
                .error("recursive anchor", "unknown key 'a'", f -> Files.writeString(f, minimal + "a: &x [*x]\n"))
                .error("merge key", "unknown key", f -> Files.writeString(f,
                        "base: &b {arch: resnet18}\nmodel:\n  <<: *b\n" + "optimizer: {lr: 0.1}\n"))
                .error("flow nesting 10,000 deep", "not valid YAML", f -> Files.writeString(f, minimal + "name: "
                        + "[".repeat(10_000) + "]".repeat(10_000) + "\n"))
                .error("block nesting 1,200 deep", "not valid YAML", f -> {
                    StringBuilder b = new StringBuilder(minimal).append("train:\n");
                    for (int i = 0; i < 1200; i++) {
                        b.append(" ".repeat(i + 1)).append("k").append(i).append(":\n");
                    }
                    Files.writeString(f, b.toString());
                })
                .error("4 MB document", "may have at most 1048576 bytes", f -> Files.writeString(f, minimal + "name: \""
                        + "x".repeat(4 << 20) + "\"\n"))
                .error("100,000-character key", "not valid YAML | unknown key", f -> Files.writeString(f, minimal
                        + "k".repeat(100_000) + ": 1\n"))
                .error("30 MB comment", "may have at most 1048576 bytes", f -> Files.writeString(f, minimal + "#"
                        + "c".repeat(30 << 20) + "\n"))
                .error("Python object tag", "optimizer.momentum", f -> Files.writeString(f, minimal.replace(
                        "lr: 0.1}", "lr: 0.1, momentum: !!python/object/apply:os.system [\"touch " + marker + "\"]}")))
                .error("Java class tags", "data.root", f -> Files.writeString(f, minimal
                        + "data: {root: !!javax.script.ScriptEngineManager [!!java.net.URLClassLoader"
                        + " [[!!java.net.URL [\"file://" + marker + "\"]]]]}\n"))
                .error("!!binary learning rate", "optimizer.lr", f -> Files.writeString(f,
                        "model: {arch: resnet18}\noptimizer: {lr: !!binary AAAA}\n"))
                .error("epochs 1e400", "train.epochs", f -> Files.writeString(f, minimal + "train: {epochs: 1e400}\n"))
                .error("epochs 2^63", "train.epochs", f -> Files.writeString(f, minimal
                        + "train: {epochs: 9223372036854775808}\n"))
                .error("learning rate .nan", "not valid YAML | optimizer.lr", f -> Files.writeString(f, minimal.replace("0.1", ".nan")))
                .any("hex, octal, binary and underscored numbers", f -> Files.writeString(f, minimal
                        + "train: {epochs: 0x10, batch_size: 0o17, seed: 0b101, threads: 1_0}\n"))
                .any("bare number prefixes", f -> Files.writeString(f, minimal
                        + "train: {epochs: 0x, batch_size: 0b, seed: 0o, threads: 0x_}\n"))
                .any("signs without digits", f -> Files.writeString(f, minimal + "train: {epochs: +, seed: -}\n"))
                .error("freeze policy file missing", "policy file 'nope.yaml' not found", f -> Files.writeString(f,
                        minimal + "freeze: nope.yaml\n"))
                .error("freeze policy path with NUL", "freeze", f -> Files.writeString(f, minimal
                        + "freeze: \"a\\0b.yaml\"\n"))
                .error("freeze policy is the config itself", "unknown key", f -> Files.writeString(f, minimal
                        + "freeze: " + f.getFileName() + "\n"))
                .error("freeze policy is a binary file", "not valid YAML | expected a YAML mapping", f -> {
                    Files.write(f.resolveSibling("weights.pth"), Corpus.resource("seed.pth"));
                    Files.writeString(f, minimal + "freeze: weights.pth\n");
                })
                .error("freeze policy is a folder", "not found", f -> Files.writeString(f, minimal + "freeze: .\n"));
        corpus.run("config", dir, ".yaml", Corpus.readers(
                "ConfigLoader.load", (Function<Path, ?>) f -> loadAndCheck(f, List.of())));
        assertFalse(Files.exists(marker), "a YAML tag must never run code");

        Corpus policies = new Corpus(true)
                .error("zero-length policy", "expected a YAML mapping", f -> Files.write(f, new byte[0]))
                .error("policy alias bomb", "unknown key 'lol0'", f -> Files.writeString(f, billionLaughs()))
                .error("rule that is a list", "rules[0]", f -> Files.writeString(f, "rules: [[fc.*]]\n"))
                .error("rule with both train and freeze", "freeze.rules[0]", f -> Files.writeString(f,
                        "rules: [{train: a, freeze: b}]\n"))
                .any("null rule", f -> Files.writeString(f, "rules: [~]\n"))
                .error("bad regex", "freeze.rules[0].train", f -> Files.writeString(f, "rules: [{train: \"re:(\"}]\n"))
                .error("frozen stages as text", "frozen_stages", f -> Files.writeString(f, "frozen_stages: two\n"));
        policies.run("policy", dir, ".yaml", Corpus.readers(
                "ConfigLoader.loadPolicy", (Function<Path, ?>) f -> ConfigLoader.loadPolicy(f).toPolicy()));
    }

    @Test
    void handMadeSetEdits() throws IOException {
        List<String> sets = List.of(
                "a[x]=1", "train.unfreeze[-1].at_epoch=2", "train.unfreeze[99999999999].at_epoch=2",
                "train.unfreeze[0].at_epoch[0]=1", "=1", ".=1", "..=1", "optimizer..lr=1", "optimizer.lr[0]=1",
                "model.arch.x=1", "optimizer.lr=*a", "optimizer.lr=[", "optimizer.lr=!!binary x", "train[0]=1",
                "optimizer.lr=\u0000", "optimizer", "optimizer.lr", "[0]=1", "optimizer.groups[]=1",
                "optimizer.groups[0=1", "optimizer.groups]0[=1", "data.mean[3]=1", "data.mean[-1]=1", "model.remap[0].from=(",
                "freeze=policy-does-not-exist.yaml", "freeze.rules=" + "[".repeat(5000),
                "name=" + "x".repeat(100_000), "optimizer.lr=1e400", "train.epochs=2147483648");
        try (FuzzRun run = new FuzzRun("config --set corpus", true)) {
            for (String set : sets) {
                run.attempt("--set " + abbreviate(set), List.of(seed), () -> loadAndCheck(seed, List.of(set)));
            }
            run.report();
        }
    }

    @Test
    void wrongValueAtEveryKey() throws IOException {
        JsonNode tree = YAML.readTree(seed.toFile());
        List<String> paths = new ArrayList<>();
        collectPaths(tree, "", paths);
        Path file = dir.resolve("edited.yaml");
        try (FuzzRun edited = new FuzzRun("config wrong types", true);
                FuzzRun viaSet = new FuzzRun("config wrong types via --set", true)) {
            for (String path : paths) {
                for (String value : WRONG_VALUES) {
                    JsonNode copy = tree.deepCopy();
                    set(copy, path, parse(value));
                    Files.writeString(file, YAML.writeValueAsString(copy));
                    String label = path + ": " + abbreviate(value);
                    edited.attempt(label, List.of(file), () -> loadAndCheck(file, List.of()));
                    viaSet.attempt("--set " + label, List.of(seed),
                            () -> loadAndCheck(seed, List.of(path + "=" + value)));
                }
            }
            edited.report();
            viaSet.report();
            assertTrue(paths.size() > 50, "every key of the seed: " + paths);
        }
    }

    @Test
    void mutatedConfigs() throws IOException {
        byte[] text = Files.readAllBytes(seed);
        Path file = dir.resolve("mutant.yaml");
        try (FuzzRun run = new FuzzRun("config", true)) {
            for (int i = 0; i < CONFIG_MUTANTS; i++) {
                Random random = new Random(CONFIG_SEED * 1_000_003L + i);
                List<String> steps = new ArrayList<>();
                byte[] mutant = mutateYaml(text, random, steps);
                List<String> sets = random.nextInt(4) == 0
                        ? List.of(randomSet(random, steps)) : List.of();
                Files.write(file, mutant);
                run.attempt("input " + i + " " + steps, List.of(file), () -> loadAndCheck(file, sets));
            }
            run.report();
            assertTrue(run.ok() > 0 && run.clean() > 0, "the mutations should produce both outcomes");
        }
    }

    @Test
    void mutatedPolicies() throws IOException {
        byte[] text = Files.readAllBytes(policySeed);
        Path file = dir.resolve("mutant-policy.yaml");
        try (FuzzRun run = new FuzzRun("policy", true)) {
            for (int i = 0; i < POLICY_MUTANTS; i++) {
                Random random = new Random(POLICY_SEED * 1_000_003L + i);
                List<String> steps = new ArrayList<>();
                Files.write(file, mutateYaml(text, random, steps));
                run.attempt("input " + i + " " + steps, List.of(file),
                        () -> ConfigLoader.loadPolicy(file).toPolicy());
            }
            run.report();
            assertTrue(run.ok() > 0 && run.clean() > 0, "the mutations should produce both outcomes");
        }
    }

    /** What a run does with a config before training: load it, then build the freeze policy and the optimizer. */
    private static ExperimentConfig loadAndCheck(Path file, List<String> sets) {
        ExperimentConfig c = ConfigLoader.load(file, sets).config();
        c.freeze().toPolicy();
        c.optimizer().toSettings();
        return c;
    }

    // ---- mutations ----

    /** One to three text mutations: a token swap, a line deleted, duplicated or re-indented, an odd line, or bytes. */
    private static byte[] mutateYaml(byte[] seedText, Random random, List<String> steps) {
        byte[] b = seedText.clone();
        int count = 1 + random.nextInt(3);
        for (int k = 0; k < count; k++) {
            if (random.nextInt(3) == 0) {
                b = Mutator.mutate(b, random, steps);
                continue;
            }
            List<String> lines = new ArrayList<>(List.of(new String(b, StandardCharsets.UTF_8).split("\n", -1)));
            int at = random.nextInt(lines.size());
            String line = lines.get(at);
            switch (random.nextInt(6)) {
                case 0 -> {
                    int colon = line.indexOf(": ");
                    String value = WRONG_VALUES.get(random.nextInt(WRONG_VALUES.size()));
                    if (colon >= 0) {
                        lines.set(at, line.substring(0, colon + 2) + value);
                        steps.add("line " + at + " value -> " + abbreviate(value));
                    }
                }
                case 1 -> {
                    lines.remove(at);
                    steps.add("delete line " + at);
                }
                case 2 -> {
                    lines.add(at, line);
                    steps.add("duplicate line " + at);
                }
                case 3 -> {
                    String indent = new String[] {"", " ", "  ", "    ", "\t"}[random.nextInt(5)];
                    lines.set(at, indent + line.stripLeading());
                    steps.add("indent line " + at + " by '" + indent + "'");
                }
                case 4 -> {
                    String odd = ODD_LINES.get(random.nextInt(ODD_LINES.size()));
                    lines.add(at, odd);
                    steps.add("insert at " + at + ": " + odd);
                }
                default -> {
                    int other = random.nextInt(lines.size());
                    lines.set(at, lines.get(other));
                    lines.set(other, line);
                    steps.add("swap lines " + at + " and " + other);
                }
            }
            b = String.join("\n", lines).getBytes(StandardCharsets.UTF_8);
        }
        return b;
    }

    private static String randomSet(Random random, List<String> steps) {
        String[] keys = {"optimizer.lr", "train.epochs", "freeze.rules[0].train", "data.mean[1]", "model.head",
            "train.unfreeze[0].match", "x.y.z", "freeze", "data.idx.classes[7]", "train.schedule.name"};
        String set = keys[random.nextInt(keys.length)] + "=" + WRONG_VALUES.get(random.nextInt(WRONG_VALUES.size()));
        steps.add("--set " + abbreviate(set));
        return set;
    }

    // ---- trees ----

    /** Every key and list element of a tree, in --set syntax: {@code optimizer.groups[0].match}. */
    private static void collectPaths(JsonNode node, String prefix, List<String> out) {
        if (node.isObject()) {
            Iterator<String> names = node.fieldNames();
            while (names.hasNext()) {
                String name = names.next();
                String path = prefix.isEmpty() ? name : prefix + "." + name;
                out.add(path);
                collectPaths(node.get(name), path, out);
            }
        } else if (node.isArray()) {
            for (int i = 0; i < node.size(); i++) {
                String path = prefix + "[" + i + "]";
                out.add(path);
                collectPaths(node.get(i), path, out);
            }
        }
    }

    private static void set(JsonNode root, String path, JsonNode value) {
        String[] parts = path.replace("[", ".[").split("\\.");
        JsonNode node = root;
        for (int i = 0; i < parts.length; i++) {
            boolean last = i == parts.length - 1;
            String part = parts[i];
            if (part.startsWith("[")) {
                int index = Integer.parseInt(part.substring(1, part.length() - 1));
                if (last) {
                    ((ArrayNode) node).set(index, value);
                    return;
                }
                node = node.get(index);
            } else {
                if (last) {
                    ((ObjectNode) node).set(part, value);
                    return;
                }
                node = node.get(part);
            }
        }
    }

    private static JsonNode parse(String yaml) {
        try {
            JsonNode n = YAML.readTree(yaml);
            return n == null || n.isMissingNode() ? TextNode.valueOf(yaml) : n;
        } catch (IOException e) {
            return TextNode.valueOf(yaml);
        }
    }

    /**
     * Nine levels of nine aliases each: 9^9 (387 million) strings if a parser expanded the aliases as a
     * {@code yaml.load} of a document tree does.
     */
    private static String billionLaughs() {
        StringBuilder b = new StringBuilder("lol0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for (int i = 1; i <= 9; i++) {
            String prev = "*l" + (i - 1);
            b.append("lol").append(i).append(": &l").append(i).append(" [")
                    .append(String.join(", ", java.util.Collections.nCopies(9, prev))).append("]\n");
        }
        return b.toString();
    }

    private static String abbreviate(String s) {
        return s.length() > 40 ? s.substring(0, 40) + "...(" + s.length() + " chars)" : s;
    }
}
