package dev.finetune.run;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.finetune.FinetuneException;
import dev.finetune.Versions;
import dev.finetune.checkpoint.Checkpoint;
import dev.finetune.checkpoint.CheckpointException;
import dev.finetune.checkpoint.CheckpointFormat;
import dev.finetune.checkpoint.Checkpoints;
import dev.finetune.checkpoint.HostTensor;
import dev.finetune.checkpoint.SafetensorsWriter;
import dev.finetune.checkpoint.TensorEntry;
import dev.finetune.data.Interpolation;
import dev.finetune.data.TransformSpec;
import dev.finetune.train.FineTuner;
import dev.finetune.train.TrainState;
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
     * @param runTime the run's wall time and peak memory up to this checkpoint, or null (a checkpoint written outside a
     *     run, or before checkpoints kept them)
     */
    public record Meta(
            String arch,
            List<String> classNames,
            Preprocessing preprocessing,
            TrainState state,
            String configYaml,
            String optimizerName,
            RunTime runTime) {
        /** Without run figures. */
        public Meta(String arch, List<String> classNames, Preprocessing preprocessing, TrainState state,
                String configYaml, String optimizerName) {
            this(arch, classNames, preprocessing, state, configYaml, optimizerName, null);
        }
    }

    /**
     * Evaluation preprocessing, travelling with the model.
     *
     * @param imageSize crop size
     * @param resize shorter side before the crop
     * @param mean RGB mean
     * @param std RGB std
     * @param interpolation {@code bicubic}, or null for torchvision's default bilinear (left out of the metadata, so
     *     files stay as they were)
     */
    @com.fasterxml.jackson.annotation.JsonInclude(com.fasterxml.jackson.annotation.JsonInclude.Include.NON_NULL)
    public record Preprocessing(int imageSize, int resize, float[] mean, float[] std, String interpolation) {
        /** With bilinear interpolation. */
        public Preprocessing(int imageSize, int resize, float[] mean, float[] std) {
            this(imageSize, resize, mean, std, null);
        }

        /** Largest image size or resize a checkpoint may ask for (a 30000 would ask for gigabytes per image). */
        public static final int MAX_SIDE = 4096;

        /** torchvision's ImageNet evaluation recipe: Resize(256), CenterCrop(224), ImageNet mean and std. */
        public static Preprocessing imagenet() {
            return new Preprocessing(224, 256, new float[] {0.485f, 0.456f, 0.406f},
                    new float[] {0.229f, 0.224f, 0.225f});
        }

        /**
         * This preprocessing if it is one a file may ask for: sides 8 to {@link #MAX_SIDE}, resize at least the image
         * size, three finite means and positive finite standard deviations.
         *
         * @throws CheckpointException naming {@code file} otherwise
         */
        public Preprocessing checked(Path file) {
            if (imageSize < 8 || imageSize > MAX_SIDE || resize < imageSize || resize > MAX_SIDE) {
                throw new CheckpointException(file, "its preprocessing asks for image size " + imageSize + " and resize "
                        + resize + "; both must be 8 to " + MAX_SIDE + ", resize at least the image size");
            }
            try {
                toTransformSpec();
            } catch (FinetuneException e) {
                throw new CheckpointException(file, "its preprocessing is invalid: " + e.getMessage());
            }
            return this;
        }

        public static Preprocessing of(TransformSpec t) {
            return new Preprocessing(t.imageSize(), t.resizeSize(), t.mean(), t.std(),
                    t.interpolation() == Interpolation.BILINEAR ? null : t.interpolation().configName());
        }

        public TransformSpec toTransformSpec() {
            return new TransformSpec(imageSize, resize, false, false, mean, std,
                    Interpolation.parse(interpolation, "preprocessing.interpolation"));
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
        write(file, ft, meta, withOptimizer, dtype, Map.of());
    }

    /**
     * {@link #write(Path, FineTuner, Meta, boolean, String)} with more training state (the weight EMA's averages,
     * {@code ema.NAME}), stored with the optimizer's under the {@code optimizer.} prefix that loading skips.
     */
    public static void write(Path file, FineTuner ft, Meta meta, boolean withOptimizer, String dtype,
            Map<String, TensorEntry> extraState) {
        // Entries, not copies: the writer reads one tensor out of the engine at a time (TensorEntry).
        LinkedHashMap<String, TensorEntry> tensors = StateDicts.entries(ft.model());
        if (withOptimizer) {
            ft.optimizer().stateEntries().forEach((k, v) -> tensors.put(OPTIMIZER_PREFIX + k, v));
            extraState.forEach((k, v) -> tensors.put(OPTIMIZER_PREFIX + k, v));
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
        if (meta.runTime() != null) {
            md.put("run_time", json(meta.runTime()));
        }
        SafetensorsWriter.writeEntries(file, tensors, md, dtype);
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
        Meta meta;
        try {
            meta = new Meta(
                    md.get("arch"),
                    JSON.readValue(md.get("class_names"), new TypeReference<List<String>>() {}),
                    JSON.readValue(md.get("preprocessing"), Preprocessing.class),
                    JSON.readValue(md.get("state"), TrainState.class),
                    md.get("config"),
                    md.get("optimizer"),
                    runTime(file, md.get("run_time")));
        } catch (JsonProcessingException | IllegalArgumentException | NullPointerException e) {
            throw new CheckpointException(file, "finetune checkpoint metadata is damaged: " + e.getMessage());
        }
        if (meta.preprocessing() == null) {
            throw new CheckpointException(file, "finetune checkpoint metadata has no preprocessing");
        }
        meta.preprocessing().checked(file);
        checkClassNames(file, meta.classNames());
        return meta;
    }

    /** The run figures a checkpoint carries: absent is null (older files); present, they must make sense. */
    private static RunTime runTime(Path file, String json) throws JsonProcessingException {
        if (json == null) {
            return null;
        }
        RunTime t = JSON.readValue(json, RunTime.class);
        if (t == null || !(t.seconds() >= 0) || Double.isInfinite(t.seconds()) || t.peakRssBytes() < -1
                || t.segments() < 1) {
            throw new CheckpointException(file, "finetune checkpoint metadata is damaged: run_time " + json
                    + " is not a wall time, a peak memory and a segment count");
        }
        return t;
    }

    /**
     * Class names as a file may give them: at least one, none null or empty, at most 200 characters, no control
     * characters (a name is printed: an escape sequence or a line break in it would forge the output).
     *
     * @throws CheckpointException naming {@code file} otherwise
     */
    public static List<String> checkClassNames(Path file, List<String> names) {
        if (names == null || names.isEmpty()) {
            throw new CheckpointException(file, "its class names are missing or empty; a classifier has at least one");
        }
        if (names.size() > Checkpoint.MAX_HEAD_CLASSES) {
            throw new CheckpointException(file, "it names " + names.size() + " classes, more than "
                    + Checkpoint.MAX_HEAD_CLASSES);
        }
        for (int i = 0; i < names.size(); i++) {
            String n = names.get(i);
            if (n == null || n.isEmpty() || n.length() > 200) {
                throw new CheckpointException(file, "class name " + i + " is "
                        + (n == null ? "null" : n.isEmpty() ? "empty" : n.length() + " characters long")
                        + "; names are 1 to 200 characters");
            }
            if (n.codePoints().anyMatch(c -> Character.isISOControl(c) || c == 0x2028 || c == 0x2029)) {
                throw new CheckpointException(file, "class name " + i + " contains control characters; names are"
                        + " printed, so they may not");
            }
        }
        return List.copyOf(names);
    }

    private static String json(Object o) {
        try {
            return JSON.writeValueAsString(o);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }
}
