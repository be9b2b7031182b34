package dev.finetune.config;

import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.lang.reflect.ParameterizedType;
import java.lang.reflect.RecordComponent;
import java.lang.reflect.Type;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;

/**
 * The config reference ({@code docs/config.md}), made from the config records themselves: every key, its type and its
 * default come from {@link ExperimentConfig} and the records under it (so a new key appears by itself); its meaning
 * comes from {@code reference.properties} next to this class, which a test keeps complete.
 */
public final class ConfigReference {
    /** A minimal config with every section present, so that binding it fills in every default. */
    static final String MINIMAL = "model: {head: {classes: auto}}\n"
            + "optimizer: {lr: 0.01}\n"
            + "freeze: {}\n"
            + "data: {root: data}\n"
            + "train: {schedule: {}, early_stopping: {}}\n";

    private ConfigReference() {}

    /**
     * One key.
     *
     * @param path its YAML path, {@code []} for an element of a list ({@code freeze.rules[].train})
     * @param type {@code integer}, {@code number}, {@code boolean}, {@code text}, {@code list of …} or {@code section}
     * @param defaultValue what it is when absent ({@code required}, or {@code —} for none)
     * @param meaning one line (empty when the reference file lacks it)
     */
    public record Key(String path, String type, String defaultValue, String meaning) {}

    /** Every key, in the order of the records. */
    public static List<Key> keys() {
        ExperimentConfig defaults = minimalWithDefaults();
        List<Key> out = new ArrayList<>();
        walk(ExperimentConfig.class, defaults, "", out, meanings());
        return out;
    }

    /** The meanings by key path, as written in {@code reference.properties}. */
    public static Map<String, String> meanings() {
        Properties p = new Properties();
        try (InputStream in = ConfigReference.class.getResourceAsStream("reference.properties")) {
            if (in == null) {
                throw new IllegalStateException("reference.properties missing from the class path");
            }
            p.load(new java.io.InputStreamReader(in, StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        Map<String, String> out = new LinkedHashMap<>();
        p.stringPropertyNames().stream().sorted().forEach(k -> out.put(k, p.getProperty(k).strip()));
        return out;
    }

    /** The meaning lines only (without the {@code @default} overrides). */
    static Map<String, String> meaningLines(Map<String, String> all) {
        Map<String, String> out = new LinkedHashMap<>();
        all.forEach((k, v) -> {
            if (!k.endsWith(DEFAULT_SUFFIX)) {
                out.put(k, v);
            }
        });
        return out;
    }

    private static final String DEFAULT_SUFFIX = "@default";

    /** {@code docs/config.md}. */
    public static String markdown() {
        StringBuilder b = new StringBuilder();
        b.append("# Config reference\n\n");
        b.append("Generated from the config records by `finetune config --reference` (a test keeps it current). Every\n");
        b.append("key of an experiment YAML, its type, its default and what it does. `finetune config --defaults`\n");
        b.append("prints a config with every default filled in; `finetune config --defaults -c X.yaml` does the same\n");
        b.append("for yours. Relative paths resolve against the config file's folder. `[]` marks an element of a list.\n");
        String section = null;
        for (Key k : keys()) {
            String top = k.path().contains(".") ? k.path().substring(0, k.path().indexOf('.')) : k.path();
            if (!top.equals(section)) {
                section = top;
                b.append("\n## `").append(top).append("`\n\n");
                b.append("| key | type | default | meaning |\n|---|---|---|---|\n");
            }
            b.append("| `").append(k.path()).append("` | ").append(k.type()).append(" | ")
                    .append(k.defaultValue().replace("|", "\\|")).append(" | ")
                    .append(k.meaning().replace("|", "\\|")).append(" |\n");
        }
        return b.toString();
    }

    /**
     * A minimal config (model, optimizer lr 0.01, an image folder named {@code data}) with {@code sets} applied and every
     * default filled in, as YAML: a starting point to copy.
     */
    public static String defaultsYaml(List<String> sets) {
        try {
            Path tmp = Files.createTempFile("finetune-defaults", ".yaml");
            try {
                Files.writeString(tmp, "name: example\nmodel: {checkpoint: torchvision:resnet18, head: {classes: auto}}\n"
                        + "optimizer: {lr: 0.01}\nfreeze: {}\ndata: {root: data}\n");
                return defaultsYaml(ConfigLoader.load(tmp, sets));
            } finally {
                Files.deleteIfExists(tmp);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** {@code loaded}'s config with every default filled in, as YAML (keys with no value are left out). */
    public static String defaultsYaml(ConfigLoader.Loaded loaded) {
        var yaml = ConfigLoader.yaml();
        com.fasterxml.jackson.databind.node.ObjectNode tree = yaml.valueToTree(loaded.config());
        // Defaults the records leave to the objects they build: the optimizer's and the policy's.
        var s = loaded.config().optimizer().toSettings();
        var opt = tree.withObject("/optimizer");
        opt.put("name", s.name());
        opt.put("lr", s.lr());
        opt.put("momentum", s.momentum());
        opt.put("nesterov", s.nesterov());
        opt.put("dampening", s.dampening());
        opt.put("weight_decay", s.weightDecay());
        opt.putArray("betas").add(s.beta1()).add(s.beta2());
        opt.put("eps", s.eps());
        opt.put("decay_norm_and_bias", s.decayNormAndBias());
        var freeze = tree.withObject("/freeze");
        if (!freeze.has("default")) {
            freeze.put("default", "train");
        }
        if (!freeze.has("batchnorm")) {
            freeze.put("batchnorm", "auto");
        }
        try {
            return yaml.writeValueAsString(tree);
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Writes {@link #markdown()} to {@code file}. */
    public static void write(Path file) throws IOException {
        Files.writeString(file, markdown());
    }

    /** {@link #MINIMAL} bound: every record built, every default filled in by its constructor. */
    static ExperimentConfig minimalWithDefaults() {
        try {
            Path tmp = Files.createTempFile("finetune-defaults", ".yaml");
            try {
                Files.writeString(tmp, MINIMAL);
                return ConfigLoader.load(tmp, List.of()).config();
            } finally {
                Files.deleteIfExists(tmp);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static String defaultOf(Map<String, String> meanings, String path, String computed) {
        return meanings.getOrDefault(path + DEFAULT_SUFFIX, computed);
    }

    private static void walk(Class<?> type, Object value, String prefix, List<Key> out, Map<String, String> meanings) {
        for (RecordComponent c : type.getRecordComponents()) {
            String name = yamlName(c);
            String path = prefix + name;
            Object v = null;
            if (value != null) {
                try {
                    v = c.getAccessor().invoke(value);
                } catch (ReflectiveOperationException e) {
                    throw new IllegalStateException(e);
                }
            }
            Class<?> t = c.getType();
            Type generic = c.getGenericType();
            if (t.isRecord()) {
                out.add(new Key(path, "section", defaultOf(meanings, path, ""), meanings.getOrDefault(path, "")));
                walk(t, v, path + ".", out, meanings);
            } else if (List.class.isAssignableFrom(t) && elementType(generic).isRecord()) {
                out.add(new Key(path, "list of sections", defaultOf(meanings, path, describe(v, value == null)),
                        meanings.getOrDefault(path, "")));
                walk(elementType(generic), null, path + "[].", out, meanings);
            } else {
                String typeName = List.class.isAssignableFrom(t) ? "list of " + typeName(elementType(generic)) + "s"
                        : typeName(t);
                out.add(new Key(path, typeName, defaultOf(meanings, path, describe(v, value == null)),
                        meanings.getOrDefault(path, "")));
            }
        }
    }

    private static String yamlName(RecordComponent c) {
        JsonProperty p = c.getAnnotation(JsonProperty.class);
        if (p == null && c.getAccessor().getAnnotation(JsonProperty.class) != null) {
            p = c.getAccessor().getAnnotation(JsonProperty.class);
        }
        if (p == null) {
            try {
                var field = c.getDeclaringRecord().getDeclaredField(c.getName());
                p = field.getAnnotation(JsonProperty.class);
            } catch (NoSuchFieldException e) {
                p = null;
            }
        }
        if (p != null && !p.value().isEmpty()) {
            return p.value();
        }
        return new PropertyNamingStrategies.SnakeCaseStrategy().translate(c.getName());
    }

    private static Class<?> elementType(Type generic) {
        if (generic instanceof ParameterizedType pt && pt.getActualTypeArguments()[0] instanceof Class<?> c) {
            return c;
        }
        return Object.class;
    }

    private static String typeName(Class<?> t) {
        if (t == Integer.class || t == int.class || t == Long.class) {
            return "integer";
        }
        if (t == Double.class || t == double.class || t == Float.class) {
            return "number";
        }
        if (t == Boolean.class || t == boolean.class) {
            return "boolean";
        }
        return "text";
    }

    private static String describe(Object v, boolean insideList) {
        if (insideList) {
            return "—";
        }
        if (v == null) {
            return "—";
        }
        if (v instanceof List<?> l) {
            if (l.isEmpty()) {
                return "[]";
            }
            List<String> items = new ArrayList<>();
            for (Object o : l) {
                items.add(o instanceof Number n ? plain(n) : String.valueOf(o));
            }
            return "`[" + String.join(", ", items) + "]`";
        }
        if (v instanceof Number n) {
            return "`" + plain(n) + "`";
        }
        return "`" + v + "`";
    }

    private static String plain(Number n) {
        if (n instanceof Double || n instanceof Float) {
            return new BigDecimal(n.toString()).stripTrailingZeros().toPlainString();
        }
        return n.toString();
    }
}
