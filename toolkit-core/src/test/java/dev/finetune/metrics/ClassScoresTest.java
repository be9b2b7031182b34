package dev.finetune.metrics;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;
import org.junit.jupiter.api.Test;

/** Per-class scores and their averages, as scikit-learn's {@code classification_report} gives them. */
class ClassScoresTest {

    @Test
    void matchesScikitLearnOnAThreeClassExample() {
        // y_true = [0,0,1,1,2,2,2], y_pred = [0,1,1,1,2,0,2]
        long[][] confusion = {{1, 1, 0}, {0, 2, 0}, {1, 0, 2}};
        List<ClassScores> s = ClassScores.of(confusion);
        assertEquals(new ClassScores(0.5, 0.5, 0.5, 2), s.get(0));
        assertEquals(2.0 / 3, s.get(1).precision(), 1e-15);
        assertEquals(1.0, s.get(1).recall());
        assertEquals(0.8, s.get(1).f1(), 1e-15);
        assertEquals(1.0, s.get(2).precision());
        assertEquals(2.0 / 3, s.get(2).recall(), 1e-15);
        assertEquals(3, s.get(2).support());
        ClassScores.Averages a = ClassScores.Averages.of(s);
        assertEquals(0.7, a.macroF1(), 1e-15);
        assertEquals(5.0 / 7, a.weightedF1(), 1e-15);
        assertEquals((0.5 + 2.0 / 3 + 1) / 3, a.macroPrecision(), 1e-15);
        assertEquals((0.5 + 1 + 2.0 / 3) / 3, a.macroRecall(), 1e-15);
        assertEquals(5.0 / 7, a.weightedRecall(), 1e-15, "weighted recall is accuracy");
    }

    @Test
    void classesNeverPredictedOrWithoutSamplesScoreZero() {
        // zero_division=0: class 1 has no samples and is never predicted; class 2 is never predicted.
        long[][] confusion = {{2, 0, 0}, {0, 0, 0}, {1, 0, 0}};
        List<ClassScores> s = ClassScores.of(confusion);
        assertEquals(new ClassScores(0, 0, 0, 0), s.get(1));
        assertEquals(new ClassScores(0, 0, 0, 1), s.get(2));
        assertEquals(2.0 / 3, s.get(0).precision(), 1e-15);
    }
}
