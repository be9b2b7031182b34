package dev.finetune.policy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.finetune.ErrorKind;
import dev.finetune.FinetuneException;
import org.junit.jupiter.api.Test;

/** {@link NamePattern}: globs over dotted names, module-name prefixes, {@code re:} search, and the error wording. */
class NamePatternTest {

    private static NamePattern p(String source) {
        return NamePattern.parse(source, "freeze.rules[0].train");
    }

    @Test
    void starMatchesAcrossDots() {
        NamePattern fc = p("fc.*");
        assertTrue(fc.matches("fc.weight"));
        assertTrue(fc.matches("fc.bias"));
        assertFalse(fc.matches("fc"));
        assertFalse(fc.matches("layer4.1.fc.weight"), "a glob matches the whole name");

        NamePattern layer4 = p("layer4.*");
        assertTrue(layer4.matches("layer4.0.conv1.weight"));
        assertTrue(layer4.matches("layer4.1.bn2.running_var"));
        assertFalse(layer4.matches("layer40.0.conv1.weight"), "the dot is literal");
        assertFalse(layer4.matches("layer3.0.conv1.weight"));

        assertTrue(p("*.bn?.weight").matches("layer1.0.bn1.weight"));
        assertTrue(p("*.bn?.weight").matches("layer4.1.bn2.weight"));
        assertFalse(p("*.bn?.weight").matches("layer4.1.bn2.bias"));
        assertFalse(p("*.bn?.weight").matches("bn1.weight"), "'*.' needs something before the dot");
        assertTrue(p("*bn*").matches("bn1.weight"));
        assertTrue(p("*").matches("conv1.weight"));
    }

    @Test
    void dotIsLiteralAndQuestionMarkIsOneCharacter() {
        assertFalse(p("fc.weight").matches("fcXweight"), "'.' in a glob is not a regex wildcard");
        assertTrue(p("fc?weight").matches("fc.weight"));
        assertFalse(p("fc?weight").matches("fc..weight"));
        assertTrue(p("layer?.0.conv1.weight").matches("layer3.0.conv1.weight"));
        assertFalse(p("layer?.0.conv1.weight").matches("layer10.0.conv1.weight"));
        assertTrue(p("fc.+").matches("fc.+"), "other regex metacharacters are literal in a glob");
        assertFalse(p("fc.+").matches("fc.weight"));
    }

    @Test
    void moduleNameMatchesEverythingBelowIt() {
        NamePattern layer4 = p("layer4");
        assertTrue(layer4.matches("layer4.0.conv1.weight"));
        assertTrue(layer4.matches("layer4.1.bn2.running_mean"));
        assertFalse(layer4.matches("layer40.0.conv1.weight"), "a module name is not a string prefix");
        assertFalse(layer4.matches("layer3.0.conv1.weight"));

        NamePattern unit = p("layer3.1");
        assertTrue(unit.matches("layer3.1.bn2.bias"));
        assertFalse(unit.matches("layer3.10.bn2.bias"));
        assertFalse(unit.matches("layer3.0.bn2.bias"));

        assertTrue(p("fc").matches("fc.weight"));
        assertTrue(p("fc.weight").matches("fc.weight"), "a full tensor name matches itself");
        assertFalse(p("fc.weight").matches("fc.weight_g"));
        assertFalse(p("conv1.weight").matches("layer1.0.conv1.weight"), "names are anchored at the start");
        assertTrue(p("layer2.0.downsample").matches("layer2.0.downsample.1.weight"));
    }

    @Test
    void globWithWildcardIsNotAlsoAPrefix() {
        // layer4* is a glob: it matches the whole name, so it also takes layer40 (as fnmatch would).
        assertTrue(p("layer4*").matches("layer40.weight"));
        assertFalse(p("layer?").matches("layer4.0.conv1.weight"), "a wildcard pattern has no module-prefix rule");
    }

    @Test
    void regexSearchesAnywhere() {
        NamePattern bn = p("re:bn");
        assertTrue(bn.matches("layer1.0.bn1.weight"), "re: is re.search, not re.match");
        assertTrue(bn.matches("bn1.bias"));
        assertFalse(p("re:^bn").matches("layer1.0.bn1.weight"));
        assertTrue(p("re:^bn").matches("bn1.weight"));

        NamePattern early = p("re:^layer[1-3]\\.");
        assertTrue(early.matches("layer2.0.conv1.weight"));
        assertFalse(early.matches("layer4.0.conv1.weight"));
        assertTrue(p("re:\\.bias$").matches("layer4.1.bn2.bias"));
        assertFalse(p("re:\\.bias$").matches("layer4.1.bn2.bias_x"));
        assertEquals("re:^layer[1-3]\\.", early.source());
        assertEquals("re:^layer[1-3]\\.", early.toString());
    }

    @Test
    void whereIsKept() {
        assertEquals("optimizer.groups[2].match", NamePattern.parse("fc.*", "optimizer.groups[2].match").where());
    }

    @Test
    void invalidRegexNamesWhereAndWhy() {
        FinetuneException e = assertThrows(FinetuneException.class, () -> p("re:layer[1-3"));
        assertEquals(ErrorKind.CONFIG, e.kind());
        assertEquals("freeze.rules[0].train: invalid regex 'layer[1-3': Unclosed character class near index 8",
                e.getMessage());

        FinetuneException g = assertThrows(FinetuneException.class, () -> p("re:(fc"));
        assertEquals("freeze.rules[0].train: invalid regex '(fc': Unclosed group near index 3", g.getMessage());
    }

    @Test
    void invalidGlobCharactersSuggestARegex() {
        FinetuneException e = assertThrows(FinetuneException.class, () -> p("layer[1-3].*"));
        assertEquals(ErrorKind.CONFIG, e.kind());
        assertEquals("freeze.rules[0].train: invalid glob 'layer[1-3].*': only * and ? are wildcards; for classes or"
                + " groups write a regex as 're:layer[1-3].*'", e.getMessage());
        assertThrows(FinetuneException.class, () -> p("layer{1,2}"));
        assertThrows(FinetuneException.class, () -> p("(fc|layer4)"));
        assertThrows(FinetuneException.class, () -> p("fc]"));
    }

    @Test
    void emptyPattern() {
        FinetuneException e = assertThrows(FinetuneException.class, () -> p(""));
        assertEquals("freeze.rules[0].train: empty pattern; write a name, a glob or re:REGEX", e.getMessage());
        assertThrows(FinetuneException.class, () -> p("   "));
        assertThrows(FinetuneException.class, () -> p(null));
    }
}
