package dev.finetune.policy;

import dev.finetune.ConfigException;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * A pattern over torchvision names, as written in a policy. Three spellings:
 * <ul>
 *   <li>a glob ({@code layer4.*}, {@code *.bn?.weight}): {@code *} matches any run of characters, dots included,
 *       {@code ?} one character; it must match the whole name;</li>
 *   <li>a module name ({@code layer4}, {@code layer3.1}): matches every tensor below that module, as PyTorch users
 *       write {@code model.layer4.parameters()};</li>
 *   <li>{@code re:} + a Java regex ({@code re:^layer[1-3]\.}), searched anywhere in the name like {@code re.search};</li>
 *   <li>{@code stage:} + a stage name of the model ({@code stage:head}, {@code stage:layer4}, {@code stage:stage5}):
 *       every tensor of that stage, whatever the family calls its modules, so one policy fits every architecture.</li>
 * </ul>
 *
 * @param source the pattern as the user wrote it (used in reports and errors)
 * @param where the YAML path of the pattern, for error messages
 */
public record NamePattern(String source, String where, Pattern regex, boolean prefixMatch) {

    /** Parses a pattern; an invalid one is a config error naming {@code where}. */
    public static NamePattern parse(String source, String where) {
        if (source == null || source.isBlank()) {
            throw new ConfigException(where, "empty pattern; write a name, a glob or re:REGEX");
        }
        if (source.startsWith(STAGE)) {
            if (source.length() == STAGE.length()) {
                throw new ConfigException(where, "empty stage name; write stage:head, stage:layer4 …");
            }
            return new NamePattern(source, where, null, false);
        }
        if (source.startsWith("re:")) {
            String re = source.substring(3);
            try {
                return new NamePattern(source, where, Pattern.compile(re), false);
            } catch (PatternSyntaxException e) {
                throw new ConfigException(where, "invalid regex '" + re + "': " + e.getDescription() + " near index " + e.getIndex());
            }
        }
        if (source.contains("[") || source.contains("]") || source.contains("{") || source.contains("(")) {
            throw new ConfigException(where, "invalid glob '" + source + "': only * and ? are wildcards; for classes or groups write"
                            + " a regex as 're:" + source + "'");
        }
        boolean wild = source.contains("*") || source.contains("?");
        StringBuilder re = new StringBuilder("^");
        for (char c : source.toCharArray()) {
            switch (c) {
                case '*' -> re.append(".*");
                case '?' -> re.append('.');
                default -> re.append(Pattern.quote(Character.toString(c)));
            }
        }
        re.append('$');
        return new NamePattern(source, where, Pattern.compile(re.toString()), !wild);
    }

    /** The prefix of a stage pattern. */
    public static final String STAGE = "stage:";

    /** The stage a {@code stage:} pattern names, else null. */
    public String stage() {
        return source.startsWith(STAGE) ? source.substring(STAGE.length()) : null;
    }

    /** Whether this pattern selects {@code t}: by its stage for {@code stage:} patterns, else by its name. */
    public boolean matches(TensorInfo t) {
        if (stage() != null) {
            return t.stage() >= 0 && t.stageNames().get(t.stage()).equals(stage());
        }
        return matches(t.name());
    }

    /** Whether this pattern selects the tensor {@code name} (a {@code stage:} pattern needs the stage: false). */
    public boolean matches(String name) {
        if (stage() != null) {
            return false;
        }
        if (source.startsWith("re:")) {
            return regex.matcher(name).find();
        }
        if (regex.matcher(name).matches()) {
            return true;
        }
        return prefixMatch && name.startsWith(source + ".");
    }

    @Override
    public String toString() {
        return source;
    }
}
