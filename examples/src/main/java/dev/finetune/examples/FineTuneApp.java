package dev.finetune.examples;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.finetune.checkpoint.Checkpoints;
import dev.finetune.data.BatchLoader;
import dev.finetune.data.ImageFolderDataset;
import dev.finetune.data.ImageFolderIndex;
import dev.finetune.data.LoadedBatch;
import dev.finetune.data.TransformSpec;
import dev.finetune.optim.OptimizerSettings;
import dev.finetune.policy.FreezePolicy;
import dev.finetune.train.FineTuner;
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
 * — in a few lines of Java, then a few training steps and a prediction.
 *
 * <p>Run: {@code mvn -q -pl examples -am package -DskipTests && java -cp ... dev.finetune.examples.FineTuneApp
 * models/resnet18-fmnist-a.safetensors data/fashion-mnist-b}
 */
public final class FineTuneApp {
    private FineTuneApp() {}

    /** Trains the head for {@code steps} steps and returns the class predicted for the first validation image. */
    public static String run(Path checkpoint, Path data, int steps) {
        ImageFolderIndex.Split split = ImageFolderIndex.open(data, 0, 0);
        ImageFolderDataset train = new ImageFolderDataset(split.train());
        List<String> classes = train.classNames();

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

            TransformSpec small = TransformSpec.defaults().withImageSize(32).withAugmentation(false, false);
            small = new TransformSpec(32, 32, false, false, small.mean(), small.std());
            BatchLoader.Options opts = BatchLoader.Options.builder().setBatchSize(32).optShuffle(true)
                    .optTransforms(small).build();
            int done = 0;
            for (int epoch = 0; done < steps; epoch++) {
                try (BatchLoader loader = new BatchLoader(train, ft.manager(), opts, epoch)) {
                    while (loader.hasNext() && done < steps) {
                        try (LoadedBatch b = loader.next()) {
                            float loss = ft.trainStep(b.images(), b.labels());
                            System.out.printf("step %d loss %.4f%n", ++done, loss);
                        }
                    }
                }
            }

            ImageFolderDataset val = new ImageFolderDataset(split.val().orElseThrow());
            try (BatchLoader loader = new BatchLoader(val, ft.manager(), opts.toBuilder().optShuffle(false).build(), 0);
                    LoadedBatch b = loader.next();
                    NDManager m = ft.manager().newSubManager()) {
                NDArray logits = ft.predictLogits(b.images());   // no autograd graph
                logits.attach(m);
                int predicted = (int) logits.get(0).argMax().getLong();
                String truth = classes.get((int) b.labels().get(0).getLong());
                System.out.println("first validation image: predicted " + classes.get(predicted) + ", true " + truth);
                return classes.get(predicted);
            }
        }
    }

    public static void main(String[] args) {
        Path ckpt = Path.of(args.length > 0 ? args[0] : "models/resnet18-fmnist-a.safetensors");
        Path data = Path.of(args.length > 1 ? args[1] : "data/fashion-mnist-b");
        run(ckpt, data, 20);
    }
}
