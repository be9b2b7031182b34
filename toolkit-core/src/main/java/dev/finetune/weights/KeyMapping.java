package dev.finetune.weights;

import dev.finetune.ConfigException;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * How checkpoint keys become model names: wrapper prefixes stripped ({@code module.} from DataParallel,
 * {@code _orig_mod.} from torch.compile, and a configured one such as {@code backbone.}), then regex remaps applied in
 * order ({@code re.sub} semantics, first match of each rule).
 *
 * @param stripPrefixes prefixes removed, repeatedly, from the start of each key
 * @param remaps regex rewrites applied after stripping
 */
public record KeyMapping(List<String> stripPrefixes, List<Remap> remaps) {
    /** The wrappers PyTorch adds by itself. */
    public static final List<String> WRAPPER_PREFIXES = List.of("module.", "_orig_mod.");

    public KeyMapping {
        stripPrefixes = List.copyOf(stripPrefixes);
        remaps = List.copyOf(remaps);
    }

    /** Strips PyTorch's own wrapper prefixes, no remaps. */
    public static KeyMapping defaults() {
        return new KeyMapping(WRAPPER_PREFIXES, List.of());
    }

    /** The defaults plus a user prefix ({@code backbone.}) and remaps. */
    public static KeyMapping of(String prefix, List<Remap> remaps) {
        List<String> p = new ArrayList<>(WRAPPER_PREFIXES);
        if (prefix != null && !prefix.isEmpty()) {
            p.add(prefix.endsWith(".") ? prefix : prefix + ".");
        }
        return new KeyMapping(p, remaps);
    }

    /** The model name for a checkpoint key. */
    public String map(String key) {
        String k = key;
        boolean stripped = true;
        while (stripped) {
            stripped = false;
            for (String p : stripPrefixes) {
                if (k.startsWith(p)) {
                    k = k.substring(p.length());
                    stripped = true;
                }
            }
        }
        for (Remap r : remaps) {
            k = r.apply(k);
        }
        return k;
    }

    /**
     * One regex rewrite, e.g. {@code {from: "^head\\.", to: "fc."}}.
     *
     * @param from a Java regex
     * @param to the replacement ({@code $1} for groups)
     */
    public record Remap(String from, String to) {
        public Remap {
            if (from == null || to == null) {
                throw new ConfigException(ConfigException.Part.KEY_MAPPING, "remap", "each rule needs 'from' (a regex) and 'to'");
            }
            Pattern compiled;
            try {
                compiled = Pattern.compile(from);
            } catch (PatternSyntaxException e) {
                throw new ConfigException(ConfigException.Part.KEY_MAPPING, "remap", "invalid regex '" + from + "': " + e.getDescription()
                                + "; write a Java regex such as '^head\\\\.'");
            }
            checkReplacement(to, compiled.matcher("").groupCount());
        }

        /** A replacement's {@code $n} must name a group of {@code from}, and a backslash must escape something. */
        private static void checkReplacement(String to, int groups) {
            for (int i = 0; i < to.length(); i++) {
                char c = to.charAt(i);
                if (c == '\\') {
                    if (++i >= to.length()) {
                        throw new ConfigException(ConfigException.Part.KEY_MAPPING, "remap", "replacement '" + to
                                + "' ends with a lone backslash");
                    }
                } else if (c == '$') {
                    int j = i + 1;
                    while (j < to.length() && Character.isDigit(to.charAt(j))) {
                        j++;
                    }
                    if (j == i + 1 || Integer.parseInt(to.substring(i + 1, Math.min(j, i + 4))) > groups) {
                        throw new ConfigException(ConfigException.Part.KEY_MAPPING, "remap", "replacement '" + to
                                + "' refers to a group the regex does not have (it has " + groups + "); write $1"
                                + " for the first group, \\$ for a dollar sign");
                    }
                    i = j - 1;
                }
            }
        }

        String apply(String key) {
            return Pattern.compile(from).matcher(key).replaceFirst(to);
        }
    }
}
