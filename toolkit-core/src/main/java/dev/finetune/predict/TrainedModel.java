package dev.finetune.predict;

import ai.djl.ndarray.NDManager;
import ai.djl.training.ParameterStore;
import dev.finetune.checkpoint.Checkpoint;
import dev.finetune.checkpoint.CheckpointFormat;
import dev.finetune.checkpoint.Checkpoints;
import dev.finetune.engine.Engines;
import dev.finetune.model.ResNet;
import dev.finetune.model.ResNetArch;
import dev.finetune.train.TrainingCheckpoint;
import dev.finetune.weights.KeyMapping;
import dev.finetune.weights.WeightLoader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A model ready for inference: the network with its weights, its class names and the preprocessing it was trained
 * with. From a toolkit checkpoint these travel in the metadata; from a plain torchvision / timm file they are
 * torchvision's ImageNet defaults and the classes are numbered.
 */
public final class TrainedModel implements AutoCloseable {
    private final NDManager manager;
    private final ResNet model;
    private final List<String> classNames;
    private final TrainingCheckpoint.Preprocessing preprocessing;
    private final Path source;

    private TrainedModel(NDManager manager, ResNet model, List<String> classNames,
            TrainingCheckpoint.Preprocessing preprocessing, Path source) {
        this.manager = manager;
        this.model = model;
        this.classNames = List.copyOf(classNames);
        this.preprocessing = preprocessing;
        this.source = source;
    }

    /**
     * Opens a checkpoint: a run directory (its {@code checkpoints/best.safetensors}), a toolkit checkpoint, a
     * {@code .pth} / safetensors file, or {@code torchvision:resnet18}.
     */
    public static TrainedModel open(String source, String arch) {
        Path p = Path.of(source);
        if (Files.isDirectory(p)) {
            Path best = p.resolve("checkpoints/best.safetensors");
            p = Files.isRegularFile(best) ? best : p.resolve("checkpoints/last.safetensors");
            source = p.toString();
        }
        Checkpoint c = Checkpoints.read(source);
        Engines.pytorch();
        NDManager m = NDManager.newBaseManager();
        try {
            List<String> names;
            TrainingCheckpoint.Preprocessing prep;
            ResNetArch a;
            if (c.format() == CheckpointFormat.FINETUNE) {
                TrainingCheckpoint.Meta meta = TrainingCheckpoint.meta(c.source(), c.metadata());
                names = meta.classNames();
                prep = meta.preprocessing();
                a = ResNetArch.parse(meta.arch());
            } else {
                a = ResNetArch.parse(arch == null ? "resnet18" : arch);
                int classes = headClasses(c);
                names = new ArrayList<>();
                for (int i = 0; i < classes; i++) {
                    names.add("class_" + i);
                }
                prep = new TrainingCheckpoint.Preprocessing(224, 256, new float[] {0.485f, 0.456f, 0.406f},
                        new float[] {0.229f, 0.224f, 0.225f});
            }
            ResNet net = ResNet.create(a, names.size()).initialize(m);
            WeightLoader.load(net, c, new WeightLoader.Options(KeyMapping.defaults(), true, false));
            return new TrainedModel(m, net, names, prep, c.source());
        } catch (RuntimeException e) {
            m.close();
            throw e;
        }
    }

    private static int headClasses(Checkpoint c) {
        for (var e : c.tensors().entrySet()) {
            if (e.getKey().endsWith("fc.weight") && e.getValue().shape().length == 2) {
                return (int) e.getValue().shape()[0];
            }
        }
        return 1000;
    }

    public ResNet model() {
        return model;
    }

    public NDManager manager() {
        return manager;
    }

    public ParameterStore parameterStore() {
        return new ParameterStore(manager, false);
    }

    public List<String> classNames() {
        return classNames;
    }

    public TrainingCheckpoint.Preprocessing preprocessing() {
        return preprocessing;
    }

    public Path source() {
        return source;
    }

    @Override
    public void close() {
        manager.close();
    }
}
