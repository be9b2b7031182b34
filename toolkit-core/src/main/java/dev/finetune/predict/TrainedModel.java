package dev.finetune.predict;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.training.ParameterStore;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.finetune.ErrorKind;
import dev.finetune.FinetuneException;
import dev.finetune.checkpoint.Checkpoint;
import dev.finetune.checkpoint.CheckpointException;
import dev.finetune.checkpoint.CheckpointFormat;
import dev.finetune.checkpoint.Checkpoints;
import dev.finetune.checkpoint.TorchvisionWeights;
import dev.finetune.engine.Engines;
import dev.finetune.model.Architecture;
import dev.finetune.model.Architectures;
import dev.finetune.model.BnMode;
import dev.finetune.model.FastPathReport;
import dev.finetune.model.FoldedPrefix;
import dev.finetune.model.FoldedStages;
import dev.finetune.model.FrozenPrefix;
import dev.finetune.model.GuardedPrefix;
import dev.finetune.model.Network;
import dev.finetune.model.Bf16Prefix;
import dev.finetune.model.Precision;
import dev.finetune.model.ResNet;
import dev.finetune.model.ResNetArch;
import dev.finetune.run.TrainingCheckpoint;
import dev.finetune.weights.ArchitectureRecognizer;
import dev.finetune.weights.KeyMapping;
import dev.finetune.weights.WeightLoader;
import java.io.IOException;
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
    private final Network model;
    private final List<String> classNames;
    private final TrainingCheckpoint.Preprocessing preprocessing;
    private final Path source;
    private final ParameterStore parameterStore;
    /**
     * The BN-folded prefix of every stage before the head, built on first use; null when there is none. A ResNet's
     * float32 prefix runs channels-last, and all NCHW below {@link GuardedPrefix#SMALL_INPUT_PIXELS}, over one set of folded
     * weights.
     */
    private FrozenPrefix fastPath;
    private boolean fastPathBuilt;

    private TrainedModel(NDManager manager, Network model, List<String> classNames,
            TrainingCheckpoint.Preprocessing preprocessing, Path source) {
        this.manager = manager;
        this.model = model;
        this.classNames = List.copyOf(classNames);
        this.preprocessing = preprocessing;
        this.source = source;
        this.parameterStore = new ParameterStore(manager, false);
    }

    /**
     * System property that turns the folded inference path off ({@code -Dfinetune.inference.fold=false}); it is on
     * unless this says false.
     */
    public static final String FOLD_PROPERTY = "finetune.inference.fold";

    private boolean fold = !"false".equalsIgnoreCase(System.getProperty(FOLD_PROPERTY, "true").trim());

    /**
     * Runs inference BN-folded (see {@link #logits}) or, with false, as the plain network; call before the first
     * batch. On by default: in eval mode every BN is a fixed affine map, so folding changes no result (checked on
     * each new input shape), and on this project's hosts the folded ResNet-18 ran 1.4–1.7× PyTorch's speed at 32×224
     * at 0.9–1.0× its peak RSS (docs/performance.md); small batches of a ResNet run NCHW
     * ({@link GuardedPrefix#SMALL_INPUT_PIXELS}), where channels-last would be slower than the plain network.
     */
    public TrainedModel foldBatchNorm(boolean on) {
        if (fastPathBuilt) {
            throw new IllegalStateException("set folding before the first batch");
        }
        fold = on;
        return this;
    }

    private Precision precision = Precision.FP32;

    /**
     * Runs everything before the head in {@code precision}: bf16 folds it ({@link Bf16Prefix}, the ResNet family on a
     * CPU with bf16 instructions; checked against float32 on the first batch of each shape); call before the first
     * batch.
     *
     * @throws FinetuneException (usage) where bf16 cannot run, naming why and the fix
     */
    public TrainedModel precision(Precision p) {
        if (fastPathBuilt) {
            throw new IllegalStateException("set the precision before the first batch");
        }
        String why = p.whyUnavailable(model);
        if (why != null) {
            throw new FinetuneException(ErrorKind.USAGE, "--precision " + p.configName() + ": " + why
                    + "; drop --precision");
        }
        precision = p;
        return this;
    }

    /**
     * Logits of a batch (N, 3, H, W): eval mode, no autograd. Every stage before the head runs BN-folded (and, for
     * the ResNet family, channels-last on large batches where this CPU computes it right) behind the fast-path guard,
     * which checks it against the plain network the first time it sees each input shape and falls back where it
     * differs; the head runs as usual — unless {@link #foldBatchNorm}{@code (false)} (or {@value #FOLD_PROPERTY})
     * turned it off; then, or for a network with nothing to fold, the plain stage-scoped forward
     * ({@link Network#inferLogits}).
     */
    public NDArray logits(NDArray x) {
        try (Engines.NoGrad g = Engines.noGrad()) {
            FrozenPrefix prefix = fastPath();
            if (prefix == null) {
                return model.inferLogits(parameterStore, x);
            }
            NDArray features = prefix.forward(x);
            return model.forwardStages(parameterStore, new NDList(features), false, prefix.toStage(),
                    model.stageNames().size()).singletonOrThrow();
        }
    }

    /**
     * What the fast-path guard checked and decided (empty before the first batch or without folding): the folded
     * prefix's report, one check per input shape.
     */
    public List<FastPathReport> fastPathReports() {
        return fastPath == null ? List.of() : List.of(fastPath.report());
    }

    /** The folded prefix, built on first use; null when inference runs unfolded. */
    private FrozenPrefix fastPath() {
        if (!fastPathBuilt) {
            fastPathBuilt = true;
            if (fold || precision == Precision.BF16) {
                // Inference: nothing trains and every BN normalizes with its running statistics, so everything
                // before the head is a fixed function — the condition folding needs.
                model.namedTensors().values().forEach(p -> p.freeze(true));
                model.batchNorms().forEach(n -> n.bn().setMode(BnMode.FROZEN_STATS));
                int k = model.stageNames().size() - 1;
                if (!(model instanceof ResNet r)) {
                    fastPath = FoldedStages.fold(model, parameterStore, k, manager);
                } else if (precision == Precision.BF16) {
                    fastPath = Bf16Prefix.fold(r, parameterStore, k, manager);
                } else {
                    fastPath = GuardedPrefix.fold(r, parameterStore, k, FoldedPrefix.Layout.CHANNELS_LAST, manager)
                            .contiguousBelow(GuardedPrefix.SMALL_INPUT_PIXELS);
                }
            }
        }
        return fastPath;
    }

    /**
     * Opens a checkpoint: a run directory (its {@code checkpoints/best.safetensors}), a toolkit checkpoint, a
     * {@code .pth} / safetensors file, or {@code torchvision:resnet18}. A plain file exported by {@code finetune export}
     * brings its class names and preprocessing from the sidecar written next to it ({@code model.pth.json}).
     *
     * @param arch the architecture of a plain file without a sidecar (null: resnet18)
     */
    public static TrainedModel open(String source, String arch) {
        Path p = Path.of(source);
        if (Files.isDirectory(p)) {
            Path best = p.resolve("checkpoints/best.safetensors");
            p = Files.isRegularFile(best) ? best : p.resolve("checkpoints/last.safetensors");
            source = p.toString();
        }
        Checkpoint c = Checkpoints.read(source);
        List<String> names = null;
        TrainingCheckpoint.Preprocessing prep;
        Architecture a;
        if (c.format() == CheckpointFormat.FINETUNE) {
            TrainingCheckpoint.Meta meta = TrainingCheckpoint.meta(c.source(), c.metadata());
            names = meta.classNames();
            prep = meta.preprocessing();
            a = Architectures.parse(meta.arch());
        } else {
            Sidecar side = Sidecar.next(c.source());
            if (side != null) {
                names = side.classNames();
                prep = side.preprocessing();
                a = Architectures.parse(side.arch());
                if (arch != null && !Architectures.parse(arch).equals(a)) {
                    throw new CheckpointException(c.source(), "--arch " + arch + " but its sidecar " + side.file()
                            + " says " + side.arch());
                }
            } else {
                // A raw state_dict: --arch, else what its keys and shapes show, else ResNet-18 (whose strict load
                // then names what differs). torchvision's own files bring their weights' eval transform.
                a = arch != null ? Architectures.parse(arch)
                        : ArchitectureRecognizer.recognize(c, KeyMapping.defaults())
                                .map(ArchitectureRecognizer.Recognized::arch).orElse(ResNetArch.RESNET18);
                prep = TorchvisionWeights.entryForFile(c.source().getFileName().toString())
                        .map(e -> new TrainingCheckpoint.Preprocessing(e.cropSize(), e.resizeSize(),
                                TrainingCheckpoint.Preprocessing.imagenet().mean(),
                                TrainingCheckpoint.Preprocessing.imagenet().std(),
                                e.interpolation().equals("bilinear") ? null : e.interpolation()))
                        .orElse(TrainingCheckpoint.Preprocessing.imagenet());
            }
        }
        int rows = c.headClasses(a.headName()).orElse(1000);
        if (names == null) {
            names = new ArrayList<>();
            for (int i = 0; i < rows; i++) {
                names.add("class_" + i);
            }
        }
        if (names.size() != rows) {
            throw new CheckpointException(c.source(), "it names " + names.size() + " classes but its " + a.headName() + ".weight has "
                    + rows + " rows");
        }
        Engines.pytorch();
        NDManager m = NDManager.newBaseManager();
        try {
            Network net = a.create(names.size()).initialize(m);
            WeightLoader.load(net, c, new WeightLoader.Options(KeyMapping.defaults(), true, false));
            return new TrainedModel(m, net, names, prep, c.source());
        } catch (RuntimeException e) {
            m.close();
            throw e;
        }
    }

    /**
     * The sidecar {@code finetune export} writes next to a model file ({@code model.pth.json}): class names,
     * preprocessing and architecture, read back so that an exported file predicts as its run did.
     *
     * @param file the sidecar
     * @param arch architecture name
     * @param classNames class names in label order
     * @param preprocessing the evaluation preprocessing
     */
    public record Sidecar(Path file, String arch, List<String> classNames,
            TrainingCheckpoint.Preprocessing preprocessing) {
        /** Largest sidecar read (one holds a few hundred bytes per class). */
        static final long MAX_BYTES = 64L << 20;

        /** The sidecar of {@code weights}, or null when there is none (or it describes another file). */
        static Sidecar next(Path weights) {
            Path f = weights.resolveSibling(weights.getFileName() + ".json");
            if (!Files.isRegularFile(f)) {
                return null;
            }
            try {
                if (Files.size(f) > MAX_BYTES) {
                    throw new CheckpointException(f, "is " + Files.size(f) + " bytes; a sidecar has at most " + MAX_BYTES);
                }
                JsonNode n = new ObjectMapper().readTree(f.toFile());
                if (n == null || !n.isObject() || !weights.getFileName().toString().equals(n.path("weights").asText())) {
                    return null;
                }
                if (n.path("format_version").asInt() != 1) {
                    throw new CheckpointException(f, "sidecar format_version " + n.path("format_version")
                            + " is not supported (reads 1)");
                }
                List<String> names = new ArrayList<>();
                for (JsonNode x : n.path("class_names")) {
                    names.add(x.isTextual() ? x.asText() : null);
                }
                JsonNode p = n.path("preprocessing");
                TrainingCheckpoint.Preprocessing prep = new TrainingCheckpoint.Preprocessing(
                        intValue(f, p, "center_crop"), intValue(f, p, "resize_shorter_side"), floats(f, p, "mean"),
                        floats(f, p, "std"), p.path("interpolation").asText("bilinear").startsWith("bicubic")
                                ? "bicubic" : null);
                return new Sidecar(f, n.path("arch").asText("resnet18"), TrainingCheckpoint.checkClassNames(f, names),
                        prep.checked(f));
            } catch (IOException e) {
                throw new CheckpointException(f, "unreadable sidecar: " + e.getMessage());
            }
        }

        private static int intValue(Path f, JsonNode p, String key) {
            JsonNode v = p.path(key);
            if (!v.canConvertToInt()) {
                throw new CheckpointException(f, "sidecar preprocessing." + key + " must be a whole number, found " + v);
            }
            return v.asInt();
        }

        private static float[] floats(Path f, JsonNode p, String key) {
            JsonNode v = p.path(key);
            if (!v.isArray() || v.size() != 3) {
                throw new CheckpointException(f, "sidecar preprocessing." + key + " must be 3 numbers, found " + v);
            }
            float[] out = new float[3];
            for (int i = 0; i < 3; i++) {
                out[i] = (float) v.get(i).asDouble(Double.NaN);
            }
            return out;
        }
    }

    public Network model() {
        return model;
    }

    public NDManager manager() {
        return manager;
    }

    public ParameterStore parameterStore() {
        return parameterStore;
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
        if (fastPath != null) {
            fastPath.close();
        }
        manager.close();
    }
}
