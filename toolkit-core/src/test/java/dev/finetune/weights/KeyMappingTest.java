package dev.finetune.weights;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.finetune.ErrorKind;
import dev.finetune.FinetuneException;
import java.util.List;
import org.junit.jupiter.api.Test;

/** {@link KeyMapping}: wrapper prefixes, a configured prefix, and regex remaps, applied in that order. */
class KeyMappingTest {

    @Test
    void defaultsStripDataParallelAndCompileWrappers() {
        KeyMapping m = KeyMapping.defaults();
        assertEquals("conv1.weight", m.map("module.conv1.weight"));
        assertEquals("layer4.1.bn2.running_var", m.map("_orig_mod.layer4.1.bn2.running_var"));
        assertEquals("fc.bias", m.map("_orig_mod.module.fc.bias"), "nested wrappers, either order");
        assertEquals("fc.bias", m.map("module._orig_mod.fc.bias"));
        assertEquals("fc.bias", m.map("module.module.fc.bias"), "stripped repeatedly");
        assertEquals("conv1.weight", m.map("conv1.weight"), "plain names are left alone");
    }

    @Test
    void prefixesAreOnlyStrippedAtTheStart() {
        KeyMapping m = KeyMapping.defaults();
        assertEquals("layer1.module.weight", m.map("layer1.module.weight"));
        assertEquals("modules.fc.weight", m.map("modules.fc.weight"), "'module.' must match up to its dot");
    }

    @Test
    void customPrefixGetsItsDot() {
        KeyMapping withDot = KeyMapping.of("backbone.", List.of());
        KeyMapping withoutDot = KeyMapping.of("backbone", List.of());
        assertEquals("layer1.0.conv1.weight", withDot.map("backbone.layer1.0.conv1.weight"));
        assertEquals("layer1.0.conv1.weight", withoutDot.map("backbone.layer1.0.conv1.weight"));
        assertEquals(List.of("module.", "_orig_mod.", "backbone."), withoutDot.stripPrefixes());
        assertEquals("layer1.0.conv1.weight", withDot.map("module.backbone.layer1.0.conv1.weight"),
                "combined with the wrappers");
        assertEquals("backbones.fc.weight", withoutDot.map("backbones.fc.weight"));
    }

    @Test
    void emptyOrNullPrefixAddsNothing() {
        assertEquals(KeyMapping.WRAPPER_PREFIXES, KeyMapping.of(null, List.of()).stripPrefixes());
        assertEquals(KeyMapping.WRAPPER_PREFIXES, KeyMapping.of("", List.of()).stripPrefixes());
    }

    @Test
    void remapsApplyAfterStrippingInOrder() {
        KeyMapping m = KeyMapping.of("model", List.of(
                new KeyMapping.Remap("^head\\.", "fc."),
                new KeyMapping.Remap("^stem\\.conv\\.", "conv1."),
                new KeyMapping.Remap("^stages\\.(\\d)\\.", "layer$1.")));
        assertEquals("fc.weight", m.map("model.head.weight"));
        assertEquals("conv1.weight", m.map("module.model.stem.conv.weight"));
        assertEquals("layer3.1.conv2.weight", m.map("stages.3.1.conv2.weight"), "$1 refers to a group");
        assertEquals("layer4.0.conv1.weight", m.map("layer4.0.conv1.weight"));
    }

    @Test
    void remapReplacesOnlyTheFirstMatchAndLaterRulesSeeEarlierOutput() {
        KeyMapping first = new KeyMapping(List.of(), List.of(new KeyMapping.Remap("bn", "norm")));
        assertEquals("layer1.0.norm1.bn", first.map("layer1.0.bn1.bn"), "re.sub with count=1");
        KeyMapping chained = new KeyMapping(List.of(), List.of(
                new KeyMapping.Remap("^head\\.", "classifier."),
                new KeyMapping.Remap("^classifier\\.", "fc.")));
        assertEquals("fc.weight", chained.map("head.weight"));
    }

    @Test
    void invalidRemapRegexIsAConfigError() {
        FinetuneException e = assertThrows(FinetuneException.class, () -> new KeyMapping.Remap("(head", "fc"));
        assertEquals(ErrorKind.CONFIG, e.kind());
        assertEquals("remap: invalid regex '(head': Unclosed group; write a Java regex such as '^head\\\\.'",
                e.getMessage());
    }
}
