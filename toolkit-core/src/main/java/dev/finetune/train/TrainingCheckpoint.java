package dev.finetune.train;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.finetune.Versions;
import dev.finetune.checkpoint.Checkpoint;
import dev.finetune.checkpoint.CheckpointException;
import dev.finetune.checkpoint.CheckpointFormat;
import dev.finetune.checkpoint.Checkpoints;
import dev.finetune.checkpoint.HostTensor;
import dev.finetune.checkpoint.SafetensorsWriter;
import dev.finetune.data.TransformSpec;
import dev.finetune.weights.StateDicts;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The toolkit's own checkpoint: a safetensors file (readable by any safetensors library) whose tensors are the
 * torchvision state_dict plus the optimizer state under {@code optimizer.}, and whose {@code __metadata__} carries
 * {@code format=finetune-checkpoint}, {@code format_version}, the architecture, class names, preprocessing, the
 * training state (epoch, step, unfreeze position, best metric, seed), the resolved config and the versions that wrote
 * it. Written atomically.
 */
public final class TrainingCheckpoint {
    /** Bumped when the layout changes; readers refuse versions they do not know. */
    public static final int FORMAT_VERSION = 1;

    public static final String OPTIMIZER_PREFIX = "optimizer.";

    private static final ObjectMapper JSON = new ObjectMapper();

    private TrainingCheckpoint() {}

    /**
     * What a checkpoint says about itself.
     *
     * @param arch architecture config name
     * @param classNames class names in label order
     * @param preprocessing image size, resize, mean, std
     * @param state the training state
     * @param configYaml the resolved experiment config
     * @param optimizerName the optimizer whose state is stored
     */
    public record Meta(
            String arch,
            List<String> classNames,
            Preprocessing preprocessing,
            TrainState state,
            String configYaml,
            String optimizerName) {}

    /**
     * Evaluation preprocessing, travelling with the model.
     *
     * @param imageSize crop size
     * @param resize shorter side before the crop
     * @param mean RGB mean
     * @param std RGB std
     */
    public record Preprocessing(int imageSize, int resize, float[] mean, float[] std) {
        public static Preprocessing of(TransformSpec t) {
            return new Preprocessing(t.imageSize(), t.resizeSize(), t.mean(), t.std());
        }

        public TransformSpec toTransformSpec() {
            return new TransformSpec(imageSize, resize, false, false, mean, std);
        }
    }

    /** A checkpoint read back: the tensors (model + optimizer) and the metadata. */
    public record Loaded(Checkpoint checkpoint, Meta meta) {
        /** The optimizer state, keys without the {@code optimizer.} prefix. */
        public Map<String, HostTensor> optimizerState() {
            Map<String, HostTensor> out = new LinkedHashMap<>();
            checkpoint.tensors().forEach((k, v) -> {
                if (k.startsWith(OPTIMIZER_PREFIX)) {
                    out.put(k.substring(OPTIMIZER_PREFIX.length()), v);
                }
            });
            return out;
        }
    }

    /** Writes weights, optimizer state and metadata of {@code ft} to {@code file}, atomically. */
    public static void write(Path file, FineTuner ft, Meta meta, boolean withOptimizer, String dtype) {
        LinkedHashMap<String, HostTensor> tensors = StateDicts.export(ft.model());
        if (withOptimizer) {
            ft.optimizer().exportState().forEach((k, v) -> tensors.put(OPTIMIZER_PREFIX + k, v));
        }
        Map<String, String> md = new LinkedHashMap<>();
        md.put(Checkpoints.FORMAT_KEY, Checkpoints.FINETUNE_FORMAT);
        md.put("format_version", Integer.toString(FORMAT_VERSION));
        md.put("arch", meta.arch());
        md.put("class_names", json(meta.classNames()));
        md.put("preprocessing", json(meta.preprocessing()));
        md.put("state", json(meta.state()));
        md.put("optimizer", meta.optimizerName() == null ? "" : meta.optimizerName());
        md.put("config", meta.configYaml() == null ? "" : meta.configYaml());
        md.put("versions", json(Versions.all()));
        SafetensorsWriter.write(file, tensors, md, dtype);
    }

    /** Reads a toolkit checkpoint; another format, or an unknown version, is a checkpoint error. */
    public static Loaded read(Path file) {
        Checkpoint c = Checkpoints.read(file);
        if (c.format() != CheckpointFormat.FINETUNE) {
            throw new CheckpointException(file, "is a " + c.format() + " file, not a finetune training checkpoint;"
                    + " to start from it, set model.checkpoint in the config instead of resuming");
        }
        return new Loaded(c, meta(file, c.metadata()));
    }

    /** Parses the metadata of a toolkit checkpoint. */
    public static Meta meta(Path file, Map<String, String> md) {
        String v = md.get("format_version");
        if (v == null || !v.equals(Integer.toString(FORMAT_VERSION))) {
            throw new CheckpointException(file, "finetune checkpoint format_version " + v + " is not supported by"
                    + " this version (" + Versions.toolkit() + ", reads version " + FORMAT_VERSION + ")");
        }
        try {
            return new Meta(
                    md.get("arch"),
                    JSON.readValue(md.get("class_names"), new TypeReference<List<String>>() {}),
                    JSON.readValue(md.get("preprocessing"), Preprocessing.class),
                    JSON.readValue(md.get("state"), TrainState.class),
                    md.get("config"),
                    md.get("optimizer"));
        } catch (JsonProcessingException | IllegalArgumentException | NullPointerException e) {
            throw new CheckpointException(file, "finetune checkpoint metadata is damaged: " + e.getMessage());
        }
    }

    private static String json(Object o) {
        try {
            return JSON.writeValueAsString(o);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }
}
