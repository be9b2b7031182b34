package dev.finetune.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** {@code finetune inspect} says how the frozen prefix will run: which stages are folded, in which arithmetic. */
class InspectFastPathCliTest {
    @Test
    void inspectNamesTheFoldedPrefixAndItsPrecision() {
        String cfg = Cli.repo().resolve("configs/experiments/fmnist-b-last-stage.yaml").toString();
        Cli.Result folded = Cli.run("inspect", "-c", cfg);
        assertEquals(0, folded.code(), folded.err());
        assertTrue(folded.out().contains("frozen prefix: stem..layer3 BN-folded, no autograd, float32, channels-last"
                + " where this CPU computes it right"), folded.out());
        Cli.Result off = Cli.run("inspect", "-c", cfg, "--set", "train.fold_frozen_bn=false");
        assertEquals(0, off.code(), off.err());
        assertFalse(off.out().contains("frozen prefix:"), "nothing folded, no line: " + off.out());
        if (dev.finetune.engine.CpuFeatures.hasBf16()) {
            Cli.Result bf16 = Cli.run("inspect", "-c", cfg, "--set", "train.precision=bf16");
            assertEquals(0, bf16.code(), bf16.err());
            assertTrue(bf16.out().contains("frozen prefix: stem..layer3 BN-folded, no autograd, bf16 (train.precision)"),
                    bf16.out());
        }
    }
}
