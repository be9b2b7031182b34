package dev.finetune.train;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

/** The prefix pass's batch: raised for small images only, never below the run's. */
class FeatureCacheBatchTest {
    @Test
    void smallImagesGetLargerBatchesUpToThePixelBudget() {
        assertEquals(512, FeatureCache.extractionBatch(64, 32));
        assertEquals(128, FeatureCache.extractionBatch(64, 64));
        assertEquals(512, FeatureCache.extractionBatch(16, 16)); // 2,048 would fit; 512 is the cap
    }

    @Test
    void theRunsBatchStandsWhereItAlreadyFillsTheBudget() {
        assertEquals(32, FeatureCache.extractionBatch(32, 224));
        assertEquals(10, FeatureCache.extractionBatch(8, 224)); // 10 × 224² pixels fit
        assertEquals(600, FeatureCache.extractionBatch(600, 32));
    }
}
