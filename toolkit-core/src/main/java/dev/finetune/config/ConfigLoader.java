package dev.finetune.config;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonMappingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.exc.InvalidFormatException;
import com.fasterxml.jackson.databind.exc.MismatchedInputException;
import com.fasterxml.jackson.databind.exc.UnrecognizedPropertyException;
import com.fasterxml.jackson.databind.exc.ValueInstantiationException;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import com.fasterxml.jackson.dataformat.yaml.YAMLGenerator;
import dev.finetune.ConfigException;
import dev.finetune.FinetuneException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Collectors;

/**
 * Reads an experiment YAML once: {@code freeze: path.yaml} is replaced by that file's content, {@code --set a.b=v}
 * edits are applied to the tree, then the tree is bound to {@link ExperimentConfig} with unknown keys rejected. Every
 * error carries its YAML path.
 */
public final class ConfigLoader {
    private static final ObjectMapper YAML = mapper();
    /** Largest config or policy file read. */
    public static final long MAX_FILE_BYTES = 1L << 20;

    private ConfigLoader() {}

    private static ObjectMapper mapper() {
        YAMLFactory f = new YAMLFactory().disable(YAMLGenerator.Feature.WRITE_DOC_START_MARKER)
                .enable(YAMLGenerator.Feature.MINIMIZE_QUOTES);
        // A key given twice is an error, not "the last one wins" silently.
        f.enable(com.fasterxml.jackson.core.JsonParser.Feature.STRICT_DUPLICATE_DETECTION);
        ObjectMapper m = new ObjectMapper(f);
        m.setPropertyNamingStrategy(PropertyNamingStrategies.SNAKE_CASE);
        m.enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES);
        m.enable(DeserializationFeature.FAIL_ON_NULL_FOR_PRIMITIVES);
        m.enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);
        m.disable(SerializationFeature.FAIL_ON_EMPTY_BEANS);
        m.setSerializationInclusion(com.fasterxml.jackson.annotation.JsonInclude.Include.NON_NULL);
        return m;
    }

    /** The mapper used for configs (YAML, snake_case), e.g. to write the resolved config into a run directory. */
    public static ObjectMapper yaml() {
        return YAML;
    }

    /**
     * A loaded experiment.
     *
     * @param config the bound record
     * @param tree the resolved tree (policy file inlined, --set applied), as written into run directories
     * @param baseDir the config file's folder: relative paths in the config resolve against it
     */
    public record Loaded(ExperimentConfig config, JsonNode tree, Path baseDir) {
        /** A path from the config, resolved against the config's folder. */
        public Path resolve(String path) {
            Path p = Path.of(path);
            return p.isAbsolute() ? p : baseDir.resolve(p).normalize();
        }
    }

    /** Reads {@code file} and applies {@code sets} ({@code a.b[0].c=value}, value parsed as YAML). */
    public static Loaded load(Path file, List<String> sets) {
        JsonNode tree = readTree(file);
        Path base = file.toAbsolutePath().getParent();
        Path policyFile = inlinePolicy(tree, base, null);
        for (String s : sets) {
            applySet(tree, s);
            policyFile = inlinePolicy(tree, base, policyFile); // a --set freeze=policies/x.yaml names a file too
        }
        if (!tree.has("name")) {
            String n = file.getFileName().toString().replaceFirst("\\.ya?ml$", "");
            ((ObjectNode) tree).put("name", n);
        }
        ExperimentConfig config;
        try {
            config = bind(tree, ExperimentConfig.class, file);
        } catch (ConfigException e) {
            throw policyFile != null && e.getMessage().startsWith("freeze")
                    ? new ConfigException("", e.getMessage().replace("(in " + file + ")", "(in " + policyFile + ")"))
                    : e;
        }
        validate(config);
        return new Loaded(config, tree, base);
    }

    /**
     * Replaces {@code freeze: path.yaml} by the content of that file (relative to the config's folder); returns the
     * policy file now inlined (or {@code current}), so errors in it can name it.
     */
    private static Path inlinePolicy(JsonNode tree, Path base, Path current) {
        JsonNode freeze = tree.get("freeze");
        if (freeze != null && freeze.isTextual()) {
            Path policy;
            try {
                policy = Path.of(freeze.asText());
            } catch (InvalidPathException e) {
                throw new ConfigException("freeze", "policy file '" + freeze.asText() + "' is not a valid path ("
                        + e.getReason() + ")");
            }
            Path resolved = policy.isAbsolute() ? policy : base.resolve(policy).normalize();
            if (!Files.isRegularFile(resolved)) {
                throw new ConfigException("freeze", "policy file '" + freeze.asText() + "' not found (looked at "
                        + resolved + "); paths are relative to the config file");
            }
            ((ObjectNode) tree).set("freeze", readTree(resolved));
            return resolved;
        }
        return current;
    }

    /** Everything that can be checked without the model or the data, so a bad config fails before any output. */
    private static void validate(ExperimentConfig c) {
        ConfigPaths.build(() -> {
            validateDomain(c);
            return null;
        });
    }

    private static void validateDomain(ExperimentConfig c) {
        if (c.model().arch() != null) {
            dev.finetune.model.Architectures.parse(c.model().arch());
        }
        if (c.model().remapPreset() != null) {
            dev.finetune.weights.RemapPresets.get(c.model().remapPreset());
        }
        c.optimizer().toSettings();
        c.freeze().toPolicy();
        for (int i = 0; i < c.model().remap().size(); i++) {
            var r = c.model().remap().get(i);
            if (r.from() == null || r.to() == null) {
                throw new ConfigException("model.remap[" + i + "]", "needs 'from' (a Java regex) and 'to' (its"
                        + " replacement), e.g. {from: \"^head\\\\.\", to: \"fc.\"}");
            }
            new dev.finetune.weights.KeyMapping.Remap(r.from(), r.to());
        }
        if (c.train().earlyStopping() != null) {
            dev.finetune.metrics.MetricChoice.parse(c.train().earlyStopping().metric());
        }
        dev.finetune.metrics.MetricChoice.parse("train.best_metric", c.train().bestMetric());
    }

    /** Reads a standalone policy file ({@code configs/policies/*.yaml}). */
    public static FreezeConfig loadPolicy(Path file) {
        return bind(readTree(file), FreezeConfig.class, file);
    }

    /** Binds a tree (already edited) to a config type; errors name the YAML path. */
    public static <T> T bind(JsonNode tree, Class<T> type, Path file) {
        try {
            return YAML.treeToValue(tree, type);
        } catch (JsonProcessingException e) {
            throw translate(e, file);
        } catch (IllegalArgumentException e) {
            if (e.getCause() instanceof JsonProcessingException j) {
                throw translate(j, file);
            }
            throw e;
        }
    }

    private static JsonNode readTree(Path file) {
        if (!Files.isRegularFile(file)) {
            throw new ConfigException("", "config file not found: " + file);
        }
        try {
            // Checked before parsing: SnakeYAML's code-point limit does not count comments, and a large comment
            // takes minutes to scan.
            long size = Files.size(file);
            if (size > MAX_FILE_BYTES) {
                throw new ConfigException("", file + " is " + size + " bytes; a config or policy file may have at most "
                        + MAX_FILE_BYTES + " bytes (1 MiB). Is it the right file?");
            }
            JsonNode n = YAML.readTree(file.toFile());
            if (n == null || !n.isObject()) {
                throw new ConfigException("", file + ": expected a YAML mapping at the top (model:, optimizer:, …)");
            }
            return n;
        } catch (JsonProcessingException e) {
            var loc = e.getLocation();
            throw new ConfigException("", file + (loc != null ? ":" + loc.getLineNr() + ":" + loc.getColumnNr() : "")
                    + ": not valid YAML: " + e.getOriginalMessage());
        } catch (IOException e) {
            throw new ConfigException("", "cannot read " + file + ": " + e.getMessage());
        }
    }

    private static RuntimeException translate(JsonProcessingException e, Path file) {
        if (e instanceof ValueInstantiationException v && v.getCause() instanceof FinetuneException f) {
            return f;
        }
        if (e.getCause() instanceof FinetuneException f) {
            return f;
        }
        String path = e instanceof JsonMappingException m ? path(m.getPath()) : "";
        if (e instanceof UnrecognizedPropertyException u) {
            String known = u.getKnownPropertyIds() == null ? "" : "; known keys: " + u.getKnownPropertyIds().stream()
                    .map(Object::toString).sorted().collect(Collectors.joining(", "));
            return new ConfigException(path, "unknown key '" + u.getPropertyName() + "'" + known + " (in " + file + ")");
        }
        if (e instanceof InvalidFormatException f) {
            return new ConfigException(path, "'" + f.getValue() + "' is not " + simple(f.getTargetType())
                    + " (in " + file + ")");
        }
        if (e instanceof MismatchedInputException mi) {
            return new ConfigException(path, "expected " + simple(mi.getTargetType()) + " (in " + file + ")");
        }
        return new ConfigException(path, e.getOriginalMessage() + " (in " + file + ")");
    }

    private static String simple(Class<?> c) {
        if (c == null) {
            return "a different value";
        }
        if (Number.class.isAssignableFrom(c) || c.isPrimitive() && c != boolean.class) {
            return "a number";
        }
        if (c == Boolean.class || c == boolean.class) {
            return "true or false";
        }
        if (List.class.isAssignableFrom(c)) {
            return "a list";
        }
        if (c == String.class) {
            return "a string";
        }
        return "a mapping (" + c.getSimpleName().replace("Config", "").toLowerCase() + " section)";
    }

    private static String path(List<JsonMappingException.Reference> refs) {
        StringBuilder b = new StringBuilder();
        for (JsonMappingException.Reference r : refs) {
            if (r.getFieldName() != null) {
                if (b.length() > 0) {
                    b.append('.');
                }
                b.append(r.getFieldName());
            } else if (r.getIndex() >= 0) {
                b.append('[').append(r.getIndex()).append(']');
            }
        }
        return b.toString();
    }

    /** Applies one {@code a.b[0].c=value} edit; the value is parsed as YAML (numbers stay numbers). */
    static void applySet(JsonNode root, String assignment) {
        int eq = assignment.indexOf('=');
        if (eq <= 0) {
            throw new ConfigException("--set", "expected KEY=VALUE (e.g. optimizer.lr=0.003), found '" + assignment + "'");
        }
        String key = assignment.substring(0, eq).trim();
        String raw = assignment.substring(eq + 1);
        JsonNode value;
        try {
            value = raw.isEmpty() ? YAML.getNodeFactory().textNode("") : YAML.readTree(raw);
            if (value == null || value.isMissingNode()) {
                value = YAML.getNodeFactory().nullNode();
            }
        } catch (JsonProcessingException e) {
            value = YAML.getNodeFactory().textNode(raw);
        }
        String[] parts = key.split("\\.");
        JsonNode node = root;
        for (int i = 0; i < parts.length; i++) {
            String part = parts[i];
            Integer index = null;
            int br = part.indexOf('[');
            if (br >= 0) {
                if (!part.endsWith("]")) {
                    throw new ConfigException("--set " + key, "bad index in '" + part + "'");
                }
                try {
                    index = Integer.parseInt(part.substring(br + 1, part.length() - 1));
                } catch (NumberFormatException e) {
                    index = -1;
                }
                if (index < 0) {
                    throw new ConfigException("--set " + key, "bad index in '" + part + "'; expected [0], [1], ...");
                }
                part = part.substring(0, br);
            }
            boolean last = i == parts.length - 1;
            if (!(node instanceof ObjectNode obj)) {
                throw new ConfigException("--set " + key, "'" + part + "' is inside a value that is not a mapping");
            }
            if (index == null) {
                if (last) {
                    obj.set(part, value);
                    return;
                }
                JsonNode next = obj.get(part);
                if (next == null || next.isNull()) {
                    next = obj.putObject(part);
                }
                node = next;
            } else {
                JsonNode arr = obj.get(part);
                if (!(arr instanceof ArrayNode a) || index >= a.size()) {
                    throw new ConfigException("--set " + key, part + "[" + index + "] does not exist in the config");
                }
                if (last) {
                    a.set(index, value);
                    return;
                }
                node = a.get(index);
            }
        }
    }
}
