package dev.finetune.metrics;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class BestTrackerTest {

    @Test
    void maxMetricKeepsTheEarliestOfEqualValues() {
        BestTracker best = new BestTracker(MetricChoice.parse("val_top1"));
        assertTrue(Double.isNaN(best.best()));
        assertTrue(best.isImprovement(0.5));
        assertTrue(best.isImprovement(0.7));
        assertFalse(best.isImprovement(0.7));
        assertFalse(best.isImprovement(0.6));
        assertFalse(best.isImprovement(Double.NaN));
        assertEquals(0.7, best.best());
    }

    @Test
    void minMetricImprovesDownwards() {
        BestTracker best = new BestTracker(MetricChoice.parse("val_loss"));
        assertFalse(best.isImprovement(Double.NaN));
        assertTrue(best.isImprovement(2.0));
        assertFalse(best.isImprovement(2.5));
        assertTrue(best.isImprovement(1.0));
        assertEquals(1.0, best.best());
    }
}
