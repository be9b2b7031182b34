package dev.finetune.train;

import dev.finetune.checkpoint.Checkpoint;
import dev.finetune.checkpoint.Checkpoints;
import dev.finetune.config.ConfigException;
import dev.finetune.config.ConfigLoader;
import dev.finetune.config.ExperimentConfig;
import dev.finetune.config.ModelConfig;
import dev.finetune.config.TrainConfig;
import dev.finetune.inspect.InspectReport;
import dev.finetune.inspect.ModelInspector;
import dev.finetune.model.ResNetArch;
import dev.finetune.weights.KeyMapping;
import java.util.List;

/** Turns a loaded experiment config into the objects that run it; the CLI and apps share this path. */
public final class Experiment {
    private Experiment() {}

    /** The checkpoint the config names, or null for from-scratch training. */
    public static Checkpoint checkpoint(ConfigLoader.Loaded loaded) {
        String source = loaded.config().model().checkpoint();
        if (source == null) {
            return null;
        }
        if (source.contains(":") && !source.startsWith("/") && !source.matches("^[A-Za-z]:\\\\.*")) {
            return Checkpoints.read(source);
        }
        return Checkpoints.read(loaded.resolve(source));
    }

    /** The checkpoint-key mapping the config asks for. */
    public static KeyMapping mapping(ModelConfig model) {
        return KeyMapping.of(model.keyPrefix(), model.remap().stream()
                .map(r -> new KeyMapping.Remap(r.from(), r.to())).toList());
    }

    /**
     * A {@link FineTuner} for the config. {@code dataClasses} is the class count of the data set, used when
     * {@code model.head.classes} is {@code auto} (null when there is no data, e.g. for inspect).
     */
    public static FineTuner fineTuner(ConfigLoader.Loaded loaded, Checkpoint checkpoint, Integer dataClasses) {
        ExperimentConfig c = loaded.config();
        FineTuner.Builder b = FineTuner.builder()
                .arch(ResNetArch.parse(c.model().arch()))
                .checkpoint(checkpoint)
                .mapping(mapping(c.model()))
                .strict(c.model().strict())
                .policy(c.freeze().toPolicy())
                .optimizer(c.optimizer().toSettings())
                .seed(c.train().seed())
                .threads(c.train().threads())
                .foldFrozenPrefix(c.train().foldFrozenBn());
        ModelConfig.HeadConfig head = c.model().head();
        if (head != null) {
            if (!head.auto()) {
                if (dataClasses != null && dataClasses != head.count()) {
                    throw new ConfigException("model.head.classes", "is " + head.count() + " but the data has "
                            + dataClasses + " classes; set it to " + dataClasses + " or 'auto'");
                }
                b.headClasses(head.count());
            } else if (dataClasses != null) {
                b.headClasses(dataClasses);
            } else {
                throw new ConfigException("model.head.classes", "is 'auto' but there is no data to count classes in;"
                        + " give a number or a data section");
            }
            b.dropout(head.dropout().floatValue());
        } else if (checkpoint == null) {
            if (dataClasses == null) {
                throw new ConfigException("model.head", "training from scratch needs {classes: N} or data to count");
            }
            b.headClasses(dataClasses);
        }
        return b.build();
    }

    /** What {@code finetune inspect} reports for the config, before training. */
    public static InspectReport inspect(ConfigLoader.Loaded loaded, Integer dataClasses) {
        return inspect(loaded, dataClasses, 1);
    }

    /**
     * What {@code finetune inspect --epoch N} reports: the state during epoch {@code epoch}, after the gradual
     * unfreezing steps with {@code at_epoch <= epoch} (their parameters in their own optimizer groups).
     */
    public static InspectReport inspect(ConfigLoader.Loaded loaded, Integer dataClasses, int epoch) {
        Checkpoint ckpt = checkpoint(loaded);
        try (FineTuner ft = fineTuner(loaded, ckpt, dataClasses)) {
            List<TrainConfig.UnfreezeConfig> steps = loaded.config().train().unfreeze();
            for (int i = 0; i < steps.size() && steps.get(i).atEpoch() <= epoch; i++) {
                Trainer.unfreeze(ft, steps.get(i), i);
            }
            int size = loaded.config().data() == null ? 224 : loaded.config().data().imageSize();
            String load = ft.loadReport() == null ? null : ft.loadReport().summary();
            boolean augment = loaded.config().data() != null && loaded.config().data().augment();
            return ModelInspector.inspect(loaded.config().name(), ft.model(), ft.plan(),
                    loaded.config().optimizer().toSettings(), ft.addedGroups(), size, augment, load);
        }
    }

    /** Loads a config file with edits. */
    public static ConfigLoader.Loaded load(java.nio.file.Path file, List<String> sets) {
        return ConfigLoader.load(file, sets);
    }
}
