package dev.finetune.predict;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.finetune.engine.Engines;
import dev.finetune.testing.TorchReference;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code predict} on a torchvision checkpoint gives PyTorch's probabilities for the same image file, with
 * torchvision's evaluation preprocessing (Resize 256, CenterCrop 224, ImageNet mean/std), and records no graph.
 */
class PredictorParityTest {
    @TempDir
    Path tmp;

    @Test
    void probabilitiesMatchTorchvisionOnTheSameFile() throws Exception {
        TorchReference ref = TorchReference.get();
        TorchReference.runPython(TorchReference.repoRoot().resolve("scripts/reference/predict_reference.py")
                .toString(), ref.checkpoint().toString(), tmp.toString());
        JsonNode expected = new ObjectMapper().readTree(tmp.resolve("probs.json").toFile());
        try (TrainedModel model = TrainedModel.open(ref.checkpoint().toString(), "resnet18")) {
            assertEquals(224, model.preprocessing().imageSize());
            assertEquals(256, model.preprocessing().resize());
            boolean gradBefore = Engines.isGradEnabled();
            List<Predictor.Prediction> p = new Predictor(model).predict(List.of(tmp.resolve("image.png")), 1000);
            assertEquals(gradBefore, Engines.isGradEnabled(), "grad mode restored on this thread");
            double worst = 0;
            for (Predictor.Scored s : p.get(0).top()) {
                worst = Math.max(worst, Math.abs(s.probability() - expected.get("probs").get(s.index()).asDouble()));
            }
            assertTrue(worst < 1e-4, "probabilities differ from torchvision's by " + worst);
            for (int i = 0; i < 5; i++) {
                assertEquals(expected.get("top5").get(i).asInt(), p.get(0).top().get(i).index(), "top-5 order");
            }
        }
    }
}
