package dev.finetune.examples;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.finetune.checkpoint.Checkpoints;
import dev.finetune.data.BatchLoader;
import dev.finetune.data.LoadedBatch;
import dev.finetune.data.TransformSpec;
import dev.finetune.optim.OptimizerSettings;
import dev.finetune.policy.FreezePolicy;
import dev.finetune.train.FineTuner;
import dev.finetune.train.TrainContext;
import dev.finetune.train.TrainState;
import dev.finetune.train.Trainer;
import dev.finetune.train.TrainingData;
import dev.finetune.train.TrainingListener;
import java.nio.file.Path;
import java.util.List;

/**
 * The library from an app: what the seed does in PyTorch —
 * <pre>
 * model = resnet18(); model.load_state_dict(torch.load(ckpt))
 * for p in model.parameters(): p.requires_grad = False
 * model.fc = nn.Linear(512, 5)
 * opt = SGD(model.fc.parameters(), lr=0.01, momentum=0.9)
 * </pre>
 * — in a few lines of Java, then the same training loop {@code finetune train} runs (feature cache, fast-path guard,
 * validation, listeners), and a prediction. No YAML anywhere: the objects are built directly.
 *
 * <p>Run: {@code mvn -q -pl examples -am package -DskipTests && java -cp ... dev.finetune.examples.FineTuneApp
 * models/resnet18-fmnist-a.safetensors data/fashion-mnist-b}
 */
public final class FineTuneApp {
    private FineTuneApp() {}

    /** What a run of the app gives. */
    public record Outcome(TrainState state, String predicted, float[] fcWeight, float[] fcBias) {}

    /**
     * Fine-tunes the head for {@code epochs} epochs (the quickstart's settings: 32×32 inputs, batch 32, seed 0) and
     * predicts the first validation image.
     */
    public static Outcome run(Path checkpoint, Path data, int epochs) {
        TransformSpec transforms = new TransformSpec(32, 32, false, false,
                TransformSpec.defaults().mean(), TransformSpec.defaults().std());
        TrainingData images = TrainingData.imageFolder(data, transforms, 0, 0);
        List<String> classes = images.classNames();

        try (FineTuner ft = FineTuner.builder()
                .checkpoint(Checkpoints.read(checkpoint))          // torchvision names, strict, report kept
                .headClasses(classes.size())                       // model.fc = nn.Linear(512, 5)
                .policy(FreezePolicy.linearProbe())                // freeze all but fc, frozen BN keeps its stats
                .optimizer(OptimizerSettings.sgd(0.01, 0.9))       // over the trainable parameters only
                .seed(0)
                .build()) {
            System.out.println("loaded: " + ft.loadReport().summary().lines().findFirst().orElse(""));
            System.out.printf("trainable %,d, frozen %,d%n", ft.plan().trainableParameterCount(),
                    ft.plan().frozenParameterCount());

            TrainState end = Trainer.builder(ft, images)          // the loop finetune train runs
                    .epochs(epochs)
                    .batchSize(32)
                    .seed(0)
                    .listener(new TrainingListener() {
                        @Override
                        public void onEpochEnd(TrainContext ctx, EpochSummary s) {
                            System.out.printf("epoch %d: train_loss %.4f val_top1 %.3f%s%n", s.epoch(),
                                    s.trainLoss(), s.val().top1(), s.featureCache() ? " (feature cache)" : "");
                        }
                    })
                    .build()
                    .fit();

            try (BatchLoader loader = images.valLoader(ft.manager(), 8);
                    LoadedBatch b = loader.next();
                    NDManager m = ft.manager().newSubManager()) {
                NDArray logits = ft.predictLogits(b.images());   // no autograd graph
                logits.attach(m);
                int predicted = (int) logits.get(0).argMax().getLong();
                String truth = classes.get((int) b.labels().get(0).getLong());
                System.out.println("first validation image: predicted " + classes.get(predicted) + ", true " + truth);
                return new Outcome(end, classes.get(predicted), ft.model().head().weight().getArray().toFloatArray(),
                        ft.model().head().bias().getArray().toFloatArray());
            }
        }
    }

    public static void main(String[] args) {
        Path ckpt = Path.of(args.length > 0 ? args[0] : "models/resnet18-fmnist-a.safetensors");
        Path data = Path.of(args.length > 1 ? args[1] : "data/fashion-mnist-b");
        run(ckpt, data, 3);
    }
}
