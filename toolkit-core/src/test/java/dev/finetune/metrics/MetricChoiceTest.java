package dev.finetune.metrics;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.finetune.ErrorKind;
import dev.finetune.FinetuneException;
import org.junit.jupiter.api.Test;

class MetricChoiceTest {

    @Test
    void lossesAreMinimisedAndAccuraciesMaximised() {
        assertEquals(new MetricChoice("val_loss", MetricChoice.Mode.MIN), MetricChoice.parse("val_loss"));
        assertEquals(new MetricChoice("train_loss", MetricChoice.Mode.MIN), MetricChoice.parse("train_loss"));
        assertEquals(new MetricChoice("val_top1", MetricChoice.Mode.MAX), MetricChoice.parse("val_top1"));
        assertEquals(new MetricChoice("val_top5", MetricChoice.Mode.MAX), MetricChoice.parse(" VAL_TOP5 "));
    }

    @Test
    void unknownMetricNamesTheFieldAndTheChoices() {
        FinetuneException e = assertThrows(FinetuneException.class, () -> MetricChoice.parse("val_acc"));
        assertEquals(ErrorKind.CONFIG, e.kind());
        assertEquals("train.early_stopping.metric: unknown metric 'val_acc'; known: val_loss, val_top1, val_top5, val_macro_f1, "
                + "train_loss", e.getMessage());
        e = assertThrows(FinetuneException.class, () -> MetricChoice.parse("checkpoint.best_metric", null));
        assertEquals("checkpoint.best_metric: unknown metric 'null'; known: val_loss, val_top1, val_top5, val_macro_f1, train_loss",
                e.getMessage());
    }

    @Test
    void improvesRespectsModeDeltaAndNaN() {
        MetricChoice loss = MetricChoice.parse("val_loss");
        MetricChoice top1 = MetricChoice.parse("val_top1");
        assertTrue(loss.improves(0.4, 0.5, 0.0));
        assertFalse(loss.improves(0.6, 0.5, 0.0));
        assertFalse(loss.improves(0.45, 0.5, 0.1));
        assertTrue(top1.improves(0.6, 0.5, 0.05));
        assertFalse(top1.improves(0.5, 0.5, 0.0));
        assertTrue(top1.improves(0.1, Double.NaN, 0.0));
        assertFalse(top1.improves(Double.NaN, 0.1, 0.0));
        assertFalse(loss.improves(Double.NaN, Double.NaN, 0.0));
    }
}
