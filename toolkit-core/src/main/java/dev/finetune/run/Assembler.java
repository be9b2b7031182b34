package dev.finetune.run;

import dev.finetune.ConfigException;
import dev.finetune.ErrorKind;
import dev.finetune.FinetuneException;
import dev.finetune.checkpoint.Checkpoint;
import dev.finetune.checkpoint.Checkpoints;
import dev.finetune.config.ConfigLoader;
import dev.finetune.config.ConfigPaths;
import dev.finetune.config.DataConfig;
import dev.finetune.config.ExperimentConfig;
import dev.finetune.config.ModelConfig;
import dev.finetune.config.TrainConfig;
import dev.finetune.data.BadImagePolicy;
import dev.finetune.data.FashionMnist;
import dev.finetune.data.IdxImageDataset;
import dev.finetune.data.IdxImages;
import dev.finetune.data.ImageDataset;
import dev.finetune.data.ImageFolderDataset;
import dev.finetune.data.ImageFolderIndex;
import dev.finetune.data.Interpolation;
import dev.finetune.data.SkippedImages;
import dev.finetune.data.TransformSpec;
import dev.finetune.inspect.InspectReport;
import dev.finetune.inspect.ModelInspector;
import dev.finetune.metrics.MetricChoice;
import dev.finetune.model.Architecture;
import dev.finetune.model.Architectures;
import dev.finetune.model.ResNetArch;
import dev.finetune.policy.FreezePolicy;
import dev.finetune.policy.NamePattern;
import dev.finetune.train.EarlyStoppingListener;
import dev.finetune.train.CrossEntropy;
import dev.finetune.train.FineTuner;
import dev.finetune.train.GradualUnfreezing;
import dev.finetune.train.LrSchedule;
import dev.finetune.train.Trainer;
import dev.finetune.train.TrainingData;
import dev.finetune.train.TrainingListener;
import dev.finetune.weights.ArchitectureRecognizer;
import dev.finetune.weights.KeyMapping;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * The one place a config becomes objects: the checkpoint, the model with its policy and optimizer, the data, the
 * schedule, the gradual-unfreezing steps, the trainer and its standard listeners. {@code train}, {@code --resume},
 * {@code inspect}, {@code experiment} and the example app all go through here; below this class nothing knows the YAML
 * layer (a program can build the same objects itself, see {@link Trainer#builder}).
 *
 * <p>Walk of one setting, {@code optimizer.lr: 0.01}: {@link ConfigLoader} binds it into
 * {@link dev.finetune.config.OptimizerConfig}; {@link #fineTuner} turns that into {@code OptimizerSettings} (lr 0.01);
 * {@code FineTuner} builds its {@code GroupedOptimizer} over the trainable parameters from it; {@link #trainer} gives the
 * loop an {@link LrSchedule} whose base is that lr.
 */
public final class Assembler {
    private Assembler() {}

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
        return ConfigPaths.build(() -> {
            List<KeyMapping.Remap> rules = new ArrayList<>();
            if (model.remapPreset() != null) {
                rules.addAll(dev.finetune.weights.RemapPresets.get(model.remapPreset()));
            }
            model.remap().forEach(r -> rules.add(new KeyMapping.Remap(r.from(), r.to())));
            return KeyMapping.of(model.keyPrefix(), rules);
        });
    }

    /**
     * The training loss {@code train.label_smoothing} and {@code train.class_weights} ask for; {@code auto} weights
     * are scikit-learn's "balanced" ones, {@code n / (classes × n_c)}, from the training data's class counts (a class
     * without samples gets weight 1), or none when there is no data to count (inspect).
     */
    static CrossEntropy loss(TrainConfig t, int[] classCounts) {
        float[] weights = null;
        if (t.classWeights() instanceof java.util.List<?> list) {
            weights = new float[list.size()];
            for (int i = 0; i < weights.length; i++) {
                weights[i] = ((Number) list.get(i)).floatValue();
            }
            if (classCounts != null && weights.length != classCounts.length) {
                throw new ConfigException("train.class_weights", "has " + weights.length + " weights but the data has "
                        + classCounts.length + " classes");
            }
        } else if ("auto".equals(t.classWeights()) && classCounts != null) {
            long n = 0;
            for (int c : classCounts) {
                n += c;
            }
            weights = new float[classCounts.length];
            for (int i = 0; i < weights.length; i++) {
                weights[i] = classCounts[i] == 0 ? 1f : (float) ((double) n / (classCounts.length * classCounts[i]));
            }
        }
        float[] w = weights;
        return ConfigPaths.build(() -> new CrossEntropy(t.labelSmoothing(), w));
    }

    /**
     * The architecture {@code model.arch} names; unset, the one the checkpoint's keys and shapes show (after
     * {@code key_prefix} / {@code remap}), else resnet18, whose strict load then names what differs.
     */
    public static Architecture architecture(ModelConfig m, Checkpoint checkpoint) {
        if (m.arch() != null) {
            return ConfigPaths.build(() -> Architectures.parse(m.arch()));
        }
        if (checkpoint != null) {
            Optional<ArchitectureRecognizer.Recognized> r = ArchitectureRecognizer.recognize(checkpoint, mapping(m));
            if (r.isPresent()) {
                return r.get().arch();
            }
        }
        return ResNetArch.RESNET18;
    }

    /**
     * A {@link FineTuner} for the config. {@code dataClasses} is the class count of the data set, used when
     * {@code model.head.classes} is {@code auto} (null when there is no data, e.g. for inspect).
     */
    public static FineTuner fineTuner(ConfigLoader.Loaded loaded, Checkpoint checkpoint, Integer dataClasses) {
        return fineTuner(loaded, checkpoint, dataClasses, null);
    }

    /** {@link #fineTuner(ConfigLoader.Loaded, Checkpoint, Integer)} for training on {@code data}. */
    public static FineTuner fineTuner(ConfigLoader.Loaded loaded, Checkpoint checkpoint, TrainingData data) {
        return fineTuner(loaded, checkpoint, data.numClasses(), data.train().classCounts());
    }

    private static FineTuner fineTuner(ConfigLoader.Loaded loaded, Checkpoint checkpoint, Integer dataClasses,
            int[] classCounts) {
        ExperimentConfig c = loaded.config();
        Architecture arch = architecture(c.model(), checkpoint); // first, so its error comes first as before
        FineTuner.Builder b = trainingSettings(c, classCounts)
                .arch(arch)
                .checkpoint(checkpoint)
                .mapping(mapping(c.model()))
                .strict(c.model().strict());
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
            if (head.dropout() != null) {
                b.dropout(head.dropout().floatValue());
            }
        } else if (checkpoint == null) {
            if (dataClasses == null) {
                throw new ConfigException("model.head", "training from scratch needs {classes: N} or data to count");
            }
            b.headClasses(dataClasses);
        }
        // Planning the policy and grouping the optimizer on this model can fail (a pattern that matches nothing).
        return ConfigPaths.build(b::build);
    }

    /**
     * What a fresh run and a resumed one take alike from the config (freeze policy, optimizer, seed, threads, fast
     * paths, loss, clipping): one place, so that no setting can be honoured by one and forgotten by the other.
     */
    private static FineTuner.Builder trainingSettings(ExperimentConfig c, int[] classCounts) {
        return FineTuner.builder()
                .policy(c.freeze().toPolicy())
                .optimizer(c.optimizer().toSettings())
                .seed(c.train().seed())
                .threads(c.train().threads())
                .foldFrozenPrefix(c.train().foldFrozenBn())
                .prefixPrecision(c.train().prefixPrecision())
                .channelsLastTraining(c.train().channelsLastTraining())
                .loss(loss(c.train(), classCounts))
                .clipGradNorm(c.train().clipGradNorm());
    }

    /**
     * The model of a run that continues from {@code resumeFrom}: its architecture and classes from the checkpoint's
     * metadata, its weights from the checkpoint, everything else from the config saved in the run.
     */
    public static FineTuner resumedFineTuner(ConfigLoader.Loaded loaded, TrainingCheckpoint.Loaded resumeFrom,
            TrainingData data) {
        TrainingCheckpoint.Meta meta = resumeFrom.meta();
        if (!meta.classNames().equals(data.classNames())) {
            throw new FinetuneException(ErrorKind.DATA, "the data's classes " + data.classNames()
                    + " differ from the checkpoint's " + meta.classNames() + "; resume with the same data");
        }
        ExperimentConfig c = loaded.config();
        Architecture arch = Architectures.parse(meta.arch());
        FineTuner.Builder b = trainingSettings(c, data.train().classCounts())
                .arch(arch)
                .checkpoint(resumeFrom.checkpoint())
                .dropout(c.model().head() == null || c.model().head().dropout() == null ? null
                        : c.model().head().dropout().floatValue());
        // Planning the policy and grouping the optimizer on this model can fail (a pattern that matches nothing).
        return ConfigPaths.build(b::build);
    }

    /** Opens the data of {@code data:}; paths resolve against the config's folder. */
    public static TrainingData data(ConfigLoader.Loaded loaded) {
        DataConfig d = loaded.config().data();
        if (d == null) {
            throw new ConfigException("data", "required for training and evaluation (format, root or idx)");
        }
        int seed = loaded.config().train().seed();
        float[] mean = toFloats(d.mean());
        float[] std = toFloats(d.std());
        TransformSpec spec = new TransformSpec(d.imageSize(), d.resize(), d.augment(), d.augment(), mean, std,
                Interpolation.parse(d.interpolation(), "data.interpolation"), d.autoAugmentPolicy(),
                d.randomErase(), d.colorJitterTransform(), d.cropScaleRange());
        int workers = d.workers() > 0 ? d.workers() : Math.max(1, Runtime.getRuntime().availableProcessors());
        BadImagePolicy bad = "skip".equals(d.onBadImage()) ? BadImagePolicy.SKIP : BadImagePolicy.FAIL;
        ImageDataset train;
        ImageDataset val;
        String description;
        if ("idx".equals(d.format())) {
            DataConfig.IdxConfig idx = d.idx();
            Path dir = loaded.resolve(idx.dir());
            List<String> names = FashionMnist.CLASS_NAMES;
            train = idxDataset(FashionMnist.readTrain(dir), idx, names, idx.trainPerClass(), idx.trainClassLimits());
            val = idxDataset(FashionMnist.readTest(dir), idx, names, idx.valPerClass(), null);
            description = "idx " + dir + " classes " + (idx.classes() == null ? "all" : idx.classes());
        } else {
            Path root = loaded.resolve(d.root());
            ImageFolderIndex.Split split = ImageFolderIndex.open(root, d.valSplit() == null ? 0 : d.valSplit(), seed);
            train = new ImageFolderDataset(split.train());
            val = split.val().map(ImageFolderDataset::new).orElse(null);
            description = split.description();
        }
        return new TrainingData(train, val, spec, d.randomTraining(), workers, bad, new SkippedImages(), description,
                "balanced".equals(d.sampler()));
    }

    /** The schedule of {@code train.schedule}. */
    public static LrSchedule.Spec schedule(TrainConfig.ScheduleConfig s) {
        try {
            return new LrSchedule.Spec(s.name(), s.warmupEpochs() == null ? 0 : s.warmupEpochs(),
                    s.stepSize() == null ? 1 : s.stepSize(), s.gamma() == null ? 0.1 : s.gamma(),
                    s.minLr() == null ? 0 : s.minLr(), s.maxLrMult() == null ? 1 : s.maxLrMult(),
                    s.pctStart() == null ? 0.3 : s.pctStart());
        } catch (IllegalArgumentException e) {
            throw new ConfigException("train.schedule", e.getMessage());
        }
    }

    /** The gradual-unfreezing steps of {@code train.unfreeze}, named {@code train.unfreeze[i]}. */
    public static List<GradualUnfreezing.Step> unfreezeSteps(TrainConfig tc) {
        List<GradualUnfreezing.Step> steps = new ArrayList<>();
        for (int i = 0; i < tc.unfreeze().size(); i++) {
            TrainConfig.UnfreezeConfig u = tc.unfreeze().get(i);
            String where = "train.unfreeze[" + i + "]";
            List<NamePattern> pats = new ArrayList<>();
            for (String m : u.match()) {
                pats.add(NamePattern.parse(m, where + ".match"));
            }
            steps.add(new GradualUnfreezing.Step(u.atEpoch(), new FreezePolicy.Rule(true, pats, where),
                    u.lrMult() == null ? 1.0 : u.lrMult()));
        }
        return steps;
    }

    /** The listeners every config-driven run has: gradual unfreezing and early stopping when configured. */
    public static List<TrainingListener> configuredListeners(ConfigLoader.Loaded loaded) {
        TrainConfig tc = loaded.config().train();
        List<TrainingListener> out = new ArrayList<>();
        if (!tc.unfreeze().isEmpty()) {
            out.add(new GradualUnfreezing(unfreezeSteps(tc)));
        }
        if (tc.earlyStopping() != null) {
            TrainConfig.EarlyStoppingConfig e = tc.earlyStopping();
            out.add(ConfigPaths.build(() -> new EarlyStoppingListener(MetricChoice.parse(e.metric()), e.patience(),
                    e.minDelta())));
        }
        return out;
    }

    /** A trainer of {@code ft} on {@code data} with the config's loop settings and these listeners. */
    public static Trainer.Builder trainer(ConfigLoader.Loaded loaded, FineTuner ft, TrainingData data) {
        TrainConfig tc = loaded.config().train();
        return Trainer.builder(ft, data)
                .epochs(tc.epochs())
                .batchSize(tc.batchSize())
                .seed(tc.seed())
                .maxStepsPerEpoch(tc.maxStepsPerEpoch())
                .featureCache(tc.featureCache())
                .ema(tc.ema() == null ? null : tc.ema().decay())
                .mixup(tc.mixup() == null ? null : new dev.finetune.train.Mixup(tc.mixup().mixupAlpha(),
                        tc.mixup().cutmixAlpha(), tc.mixup().prob(), tc.mixup().switchProb()))
                .accumulateSteps(tc.accumulateSteps())
                .updateBnBatches(tc.updateBnBatches())
                .recoveryInterval(tc.recoveryInterval())
                .valEvery(tc.valEvery())
                .featureStore(tc.featureStore() == null ? null : loaded.resolve(tc.featureStore()))
                .schedule(schedule(tc.schedule()));
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
            GradualUnfreezing.applyUpTo(ft, unfreezeSteps(loaded.config().train()), epoch);
            int size = loaded.config().data() == null ? 224 : loaded.config().data().imageSize();
            String load = ft.loadReport() == null ? null : ft.loadReport().summary();
            // Mixup mixes the images, so like random crops it changes the frozen prefix's input every step.
            boolean augment = loaded.config().data() != null && loaded.config().data().randomTraining()
                    || loaded.config().train().mixup() != null;
            return ModelInspector.inspect(loaded.config().name(), ft.model(), ft.plan(),
                    loaded.config().optimizer().toSettings(), ft.addedGroups(), size, augment, load)
                    .withFastPath(fastPath(ft))
                    .withTrainingSteps(ft.trainingStepLayout(loaded.config().train().batchSize(), size));
        }
    }

    /** How the fine-tuner's frozen prefix will run, in words; null when nothing is folded. */
    private static String fastPath(FineTuner ft) {
        int k = ft.foldedStages();
        if (k == 0) {
            return null;
        }
        List<String> stages = ft.model().stageNames();
        String span = k == 1 ? stages.get(0) : stages.get(0) + ".." + stages.get(k - 1);
        return span + " BN-folded, no autograd, " + (ft.prefixPrecision() != dev.finetune.model.Precision.FP32
                ? "bf16 (train.precision), checked against float32 by relative L2 on the first batch of each shape"
                : "float32, channels-last where this CPU computes it right" + (ft.model() instanceof
                        dev.finetune.model.ResNet ? ", one TorchScript call" : "")
                        + " (checked on the first batch of each shape)");
    }

    private static IdxImageDataset idxDataset(IdxImages images, DataConfig.IdxConfig idx, List<String> allNames,
            Integer perClass, List<Integer> classLimits) {
        IdxImageDataset.Builder b = IdxImageDataset.builder().images(images);
        if (idx.classes() != null) {
            b.classes(idx.classes().stream().mapToInt(Integer::intValue).toArray());
        }
        List<String> names = new ArrayList<>(allNames);
        if (idx.classNames() != null) {
            // Names given for the kept classes, in the order of data.idx.classes (or of all labels).
            List<Integer> ids = idx.classes() != null ? idx.classes()
                    : java.util.stream.IntStream.range(0, idx.classNames().size()).boxed().toList();
            while (names.size() < ids.stream().mapToInt(Integer::intValue).max().orElse(0) + 1) {
                names.add(Integer.toString(names.size()));
            }
            for (int i = 0; i < ids.size(); i++) {
                names.set(ids.get(i), idx.classNames().get(i));
            }
        }
        b.classNames(names);
        if (perClass != null) {
            b.limitPerClass(perClass);
        }
        if (classLimits != null) {
            b.limitsPerClass(classLimits.stream().mapToInt(Integer::intValue).toArray());
        }
        return b.build();
    }

    private static float[] toFloats(List<Double> v) {
        float[] out = new float[v.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = v.get(i).floatValue();
        }
        return out;
    }
}
