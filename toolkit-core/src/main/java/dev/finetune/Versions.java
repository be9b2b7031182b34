package dev.finetune;

import java.io.IOException;
import java.io.InputStream;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Properties;

/** Versions recorded in run directories and checkpoints (provenance). */
public final class Versions {
    private static final Properties PROPS = load();

    private Versions() {}

    private static Properties load() {
        Properties p = new Properties();
        try (InputStream in = Versions.class.getResourceAsStream("/dev/finetune/versions.properties")) {
            if (in != null) {
                p.load(in);
            }
        } catch (IOException e) {
            // Versions are informational; an unreadable resource leaves them "unknown".
        }
        return p;
    }

    public static String toolkit() {
        return PROPS.getProperty("toolkit", "unknown");
    }

    public static String djl() {
        return PROPS.getProperty("djl", "unknown");
    }

    /** The libtorch version of the bundled native jar (the engine reports the one it actually loaded). */
    public static String libtorchBundled() {
        return PROPS.getProperty("libtorch", "unknown");
    }

    /** All of them, plus Java's, for run metadata. */
    public static Map<String, String> all() {
        Map<String, String> m = new LinkedHashMap<>();
        m.put("toolkit", toolkit());
        m.put("djl", djl());
        m.put("libtorch", libtorchBundled());
        m.put("java", System.getProperty("java.version"));
        m.put("os", System.getProperty("os.name") + " " + System.getProperty("os.arch"));
        return m;
    }
}
