package dev.finetune.metrics;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.finetune.ErrorKind;
import dev.finetune.FinetuneException;
import org.junit.jupiter.api.Test;

class EarlyStoppingTest {

    @Test
    void stopsAfterPatienceEpochsWithoutImprovement() {
        EarlyStopping stop = new EarlyStopping(MetricChoice.parse("val_top1"), 2, 0.0);
        assertFalse(stop.update(0.50));
        assertFalse(stop.update(0.60));
        assertFalse(stop.update(0.60)); // a tie is no improvement: 1 bad epoch
        assertEquals(1, stop.epochsWithoutImprovement());
        assertTrue(stop.update(0.59)); // 2 bad epochs = patience
        assertEquals(0.60, stop.best());
    }

    @Test
    void anImprovementResetsTheCount() {
        EarlyStopping stop = new EarlyStopping(MetricChoice.parse("val_loss"), 2, 0.0);
        assertFalse(stop.update(1.0));
        assertFalse(stop.update(1.1));
        assertFalse(stop.update(0.9));
        assertEquals(0, stop.epochsWithoutImprovement());
        assertFalse(stop.update(0.95));
        assertTrue(stop.update(0.95));
    }

    @Test
    void improvementsSmallerThanMinDeltaDoNotCount() {
        EarlyStopping stop = new EarlyStopping(MetricChoice.parse("val_loss"), 2, 0.01);
        assertFalse(stop.update(1.0));
        assertFalse(stop.update(0.995)); // better, but by less than 0.01
        assertEquals(1.0, stop.best());
        assertTrue(stop.update(0.991));
    }

    @Test
    void patienceOneStopsAtTheFirstBadEpochAndNaNIsBad() {
        EarlyStopping stop = new EarlyStopping(MetricChoice.parse("val_top1"), 1, 0.0);
        assertFalse(stop.update(0.3));
        assertTrue(stop.update(Double.NaN));
        EarlyStopping fromNaN = new EarlyStopping(MetricChoice.parse("val_top1"), 2, 0.0);
        assertFalse(fromNaN.update(Double.NaN));
        assertFalse(fromNaN.update(0.1)); // the first real value is an improvement
        assertEquals(0, fromNaN.epochsWithoutImprovement());
    }

    @Test
    void replayingTheLogRestoresTheState() {
        double[] logged = {0.5, 0.7, 0.65};
        EarlyStopping resumed = new EarlyStopping(MetricChoice.parse("val_top1"), 2, 0.0);
        for (double v : logged) {
            resumed.update(v);
        }
        assertEquals(1, resumed.epochsWithoutImprovement());
        assertTrue(resumed.update(0.69));
    }

    @Test
    void rejectsBadSettingsWithTheFieldName() {
        MetricChoice metric = MetricChoice.parse("val_loss");
        FinetuneException e = assertThrows(FinetuneException.class, () -> new EarlyStopping(metric, 0, 0.0));
        assertEquals(ErrorKind.CONFIG, e.kind());
        assertEquals("patience: must be >= 1, found 0", e.getMessage());
        e = assertThrows(FinetuneException.class, () -> new EarlyStopping(metric, 3, -0.1));
        assertEquals("min_delta: must be a finite number >= 0, found -0.1", e.getMessage());
        assertThrows(FinetuneException.class, () -> new EarlyStopping(metric, 3, Double.NaN));
    }
}
