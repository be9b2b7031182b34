package dev.finetune.bench;

import dev.finetune.model.FoldedPrefix;
import dev.finetune.model.StepScopes;
import ai.djl.Device;
import ai.djl.MalformedModelException;
import ai.djl.Model;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Block;
import ai.djl.nn.Parameter;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.jni.JniUtils;
import ai.djl.training.GradientCollector;
import ai.djl.training.ParameterStore;
import ai.djl.training.loss.Loss;
import ai.djl.util.Pair;
import dev.finetune.data.BatchLoader;
import dev.finetune.data.ImageFolderDataset;
import dev.finetune.data.ImageFolderIndex;
import dev.finetune.data.TransformSpec;
import dev.finetune.engine.Engines;
import dev.finetune.model.ResNet;
import dev.finetune.model.ResNetArch;
import dev.finetune.optim.GroupedOptimizer;
import dev.finetune.optim.OptimizerSettings;
import dev.finetune.policy.FreezePolicy;
import dev.finetune.policy.TensorInfo;
import dev.finetune.train.FineTuner;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.UnaryOperator;

/**
 * Runs one workload at one input shape in this JVM: set-up, {@code warmup} untimed iterations, {@code iters} timed
 * ones. Every iteration gets fresh copies of the same input on its own manager, closed at the end of the iteration
 * (inside the timed region, as a training loop frees each batch), so nothing accumulates across iterations.
 */
final class WorkloadRunner {
    /** Head classes on both sides: {@code fc -> Linear(512, 10)}. */
    static final int CLASSES = 10;

    private static final double LR = 0.01;
    private static final double MOMENTUM = 0.9;

    private final Workload workload;
    private final InputShape shape;
    private final int iters;
    private final int warmup;
    private final int threads;
    private SystemLoad.Snapshot timedFrom;
    private SystemLoad.Snapshot timedTo;

    WorkloadRunner(Workload workload, InputShape shape, int iters, int warmup, int threads) {
        this.workload = workload;
        this.shape = shape;
        this.iters = iters;
        this.warmup = warmup;
        this.threads = threads;
    }

    /** One timed iteration on inputs that live on the iteration's manager. */
    private interface Iteration {
        void run(NDArray images, NDArray labels);
    }

    /**
     * Runs the workload.
     *
     * @param torchScriptDir directory with {@code resnet18_eval.pt} / {@code resnet18_train.pt} (TorchScript workloads)
     * @param dataDir ImageFolder tree (loader workload)
     * @param profile also time each stage ({@link Workload#INFERENCE} and the folded workloads)
     */
    Measurement run(Path torchScriptDir, Path dataDir, boolean profile) throws IOException, MalformedModelException {
        // Profiling is a second pass after the timed one: the timings and peak RSS never include the profiler.
        Engines.pytorch(threads);
        return switch (workload) {
            case LOADER -> loader(dataDir);
            case TORCHSCRIPT_INFERENCE, TORCHSCRIPT_FULL_STEP -> torchScript(torchScriptDir, profile);
            default -> fineTuner(profile);
        };
    }

    private Measurement fineTuner(boolean profile) throws IOException {
        FoldedPrefix.Layout layout = workload.foldedLayout();
        boolean folded = layout != null;
        if (workload == Workload.INFERENCE_FOLDED_OPS) {
            System.setProperty(dev.finetune.model.GuardedPrefix.SCRIPTED_PROPERTY, "false"); // this child JVM only
        }
        if (workload == Workload.FULL_STEP_SGD_OPS) {
            System.setProperty(dev.finetune.optim.GroupedOptimizer.SCRIPTED_PROPERTY, "false"); // likewise
        }
        // Every training workload is the library's own FineTuner.trainStep; the folded ones only ask it for a layout.
        // Its guard checks the first batch against the plain network, so a layout this host computes wrongly is not
        // what gets timed.
        try (FineTuner ft = FineTuner.builder()
                        .arch(ResNetArch.RESNET18)
                        .headClasses(CLASSES)
                        .policy(workload.policy())
                        .optimizer(OptimizerSettings.sgd(LR, MOMENTUM))
                        .threads(threads)
                        .seed(0)
                        .foldFrozenPrefix(folded)
                        .foldLayout(folded ? layout : FoldedPrefix.Layout.CHANNELS_LAST)
                        .prefixPrecision(workload.precision())
                        // train.channels_last: auto for the one workload that measures it, the default (off) elsewhere
                        .channelsLastTraining(workload == Workload.FULL_STEP_FROZEN_BN ? null : Boolean.FALSE)
                        .build();
                NDManager inputs = ft.manager().newSubManager()) {
            {
                NDArray x = inputs.randomNormal(new Shape(shape.batch(), 3, shape.size(), shape.size()));
                NDArray y = inputs.create(randomLabels(shape.batch()));
                FlopCount flops = FlopCount.of((ResNet) ft.model(), shape.size());
                long perImage = workload.trains() ? flops.trainingFlops() : flops.forwardFlops();
                long setupRss = ProcessMemory.rssKb();
                Iteration step = switch (workload) {
                    case INFERENCE -> (xi, yi) -> ft.predictLogits(xi);
                    case INFERENCE_SCOPED -> {
                        List<UnaryOperator<NDArray>> units = unitByUnit((ResNet) ft.model(), ft.parameterStore());
                        yield (xi, yi) -> {
                            try (Engines.NoGrad g = Engines.noGrad()) {
                                StepScopes.run(xi, units);
                            }
                        };
                    }
                    case INFERENCE_FOLDED, INFERENCE_FOLDED_OPS, INFERENCE_BF16 -> {
                        // As TrainedModel.logits with folding: the guarded folded prefix, then the head, no autograd.
                        int head = ft.model().stageNames().size() - 1;
                        yield (xi, yi) -> {
                            try (Engines.NoGrad g = Engines.noGrad()) {
                                NDArray f = ft.prefixFeatures(xi, head);
                                ft.model().forwardStages(ft.parameterStore(), new ai.djl.ndarray.NDList(f), false,
                                        head, head + 1);
                            }
                        };
                    }
                    case FULL_STEP, FULL_STEP_BF16_MIXED, FULL_STEP_SGD_OPS, FULL_STEP_FROZEN_BN, FULL_STEP_FROZEN_BN_NCHW, FROZEN_STEP,
                            LAST_STAGE_STEP ->
                            (xi, yi) -> ft.trainStep(xi, yi, LR);
                    case FROZEN_STEP_FOLDED, FROZEN_STEP_FOLDED_CL, FROZEN_STEP_FOLDED_CL_STEM, FROZEN_STEP_BF16 ->
                            (xi, yi) -> ft.trainStep(xi, yi, LR);
                    default -> throw new IllegalStateException(workload.toString());
                };
                List<Double> times = time(ft.manager(), x, y, step);
                SystemLoad.Snapshot before = timedFrom;
                SystemLoad.Snapshot after = timedTo;
                long peakRss = ProcessMemory.peakRssKb();
                Map<String, Double> stages = null;
                Map<String, Double> ops = null;
                if (profile) {
                    if (workload == Workload.INFERENCE
                            || (folded && workload != Workload.LAST_STAGE_STEP && !workload.bf16())) {
                        stages = profileStages(ft, x, y, layout);
                    }
                    ops = OpProfile.of(() -> once(ft.manager(), x, y, step), PROFILED_ITERATIONS, PROFILED_OPS);
                }
                return new Measurement(workload.configName(), "ours", shape.batch(), shape.size(), threads, times,
                        perImage * shape.batch(), setupRss, peakRss, SystemLoad.foreignPercent(before, after),
                        SystemLoad.kernelPercent(before, after), faultsPerIteration(before, after), stages, ops, null);
            }
        }
    }

    /** Warm-up, then the timed iterations; {@link #timedFrom}/{@link #timedTo} bracket the timed ones. */
    /**
     * The eval forward of {@code model} as steps: the stem, each residual unit ({@code layer1.0} ...), the head —
     * the same blocks {@code ResNet.forward} runs, so the same math.
     */
    private static List<UnaryOperator<NDArray>> unitByUnit(ResNet model, ParameterStore ps) {
        List<UnaryOperator<NDArray>> steps = new ArrayList<>();
        steps.add(x -> model.forwardStages(ps, new NDList(x), false, 0, 1).singletonOrThrow());
        Map<String, Block> modules = model.namedModules();
        for (int s = 1; s <= 4; s++) {
            for (int u = 0; modules.containsKey("layer" + s + "." + u); u++) {
                Block unit = modules.get("layer" + s + "." + u);
                steps.add(x -> unit.forward(ps, new NDList(x), false).singletonOrThrow());
            }
        }
        steps.add(x -> model.forwardStages(ps, new NDList(x), false, 5, 6).singletonOrThrow());
        return steps;
    }

    private List<Double> time(NDManager parent, NDArray x, NDArray y, Iteration step) {
        for (int i = 0; i < warmup; i++) {
            once(parent, x, y, step);
        }
        List<Double> times = new ArrayList<>();
        timedFrom = SystemLoad.now();
        for (int i = 0; i < iters; i++) {
            times.add(once(parent, x, y, step));
        }
        timedTo = SystemLoad.now();
        return times;
    }

    /** One iteration on fresh copies of the inputs; returns its milliseconds (the copies are not timed). */
    private static double once(NDManager parent, NDArray x, NDArray y, Iteration step) {
        long t0 = 0;
        NDManager it = parent.newSubManager();
        try {
            NDArray xi = x.duplicate();
            xi.attach(it);
            NDArray yi = y.duplicate();
            yi.attach(it);
            t0 = System.nanoTime();
            step.run(xi, yi);
        } finally {
            it.close();
        }
        return (System.nanoTime() - t0) / 1e6;
    }

    /** Iterations run under libtorch's profiler, and ops listed, when profiling. */
    private static final int PROFILED_ITERATIONS = 2;

    private static final int PROFILED_OPS = 20;

    /**
     * Median milliseconds of each stage alone: the plain no-graph eval forward ({@code layout == null}), or the folded
     * stages (inputs already in the stage's layout: conversions are not timed) and then the head's training step.
     */
    private Map<String, Double> profileStages(FineTuner ft, NDArray x, NDArray y, FoldedPrefix.Layout layout) {
        ResNet model = (ResNet) ft.model();
        ParameterStore ps = ft.parameterStore();
        Map<String, Double> out = new LinkedHashMap<>();
        List<String> names = model.stageNames();
        try (NDManager stageInputs = ft.manager().newSubManager()) {
            NDArray in = x.duplicate();
            in.attach(stageInputs);
            for (int s = 0; s < names.size(); s++) {
                final int stage = s;
                Iteration run;
                NDArray stageInput = in;
                FoldedPrefix fold = null;
                if (layout == null) {
                    run = (xi, yi) -> {
                        try (Engines.NoGrad g = Engines.noGrad()) {
                            model.forwardStages(ps, new NDList(xi), false, stage, stage + 1);
                        }
                    };
                } else if (s < 5) {
                    fold = FoldedPrefix.fold(model, s, s + 1, layout, stageInputs);
                    FoldedPrefix f = fold;
                    if (f.channelsLastAt(s)) {
                        try (Engines.NoGrad g = Engines.noGrad()) {
                            stageInput = FoldedPrefix.toChannelsLast(in);
                        }
                    }
                    run = (xi, yi) -> f.forwardInLayout(xi);
                } else {
                    run = (xi, yi) -> ft.trainStep(xi, yi, LR, stage);
                }
                try {
                    out.put(names.get(s), Measurement.median(time(stageInputs, stageInput, y, run)));
                    if (s < names.size() - 1) {
                        try (Engines.NoGrad g = Engines.noGrad()) {
                            NDArray next = model.forwardStages(ps, new NDList(in), false, s, s + 1)
                                    .singletonOrThrow();
                            next.attach(stageInputs);
                            in = next;
                        }
                    }
                } finally {
                    if (fold != null) {
                        fold.close();
                    }
                }
            }
        }
        return out;
    }

    private Measurement torchScript(Path dir, boolean profile) throws IOException, MalformedModelException {
        if (dir == null) {
            throw new IllegalArgumentException("the TorchScript workloads need --torchscript DIR (traced by Python)");
        }
        boolean train = workload == Workload.TORCHSCRIPT_FULL_STEP;
        String name = train ? "resnet18_train" : "resnet18_eval";
        try (Model model = Model.newInstance(name, Device.cpu(), "PyTorch");
                NDManager inputs = NDManager.newBaseManager(Device.cpu(), "PyTorch")) {
            Map<String, String> options = train ? Map.of("trainParam", "true") : Map.of();
            model.load(dir, name, options);
            Block block = model.getBlock();
            ParameterStore ps = new ParameterStore(inputs, false);
            NDArray x = inputs.randomNormal(new Shape(shape.batch(), 3, shape.size(), shape.size()));
            NDArray y = inputs.create(randomLabels(shape.batch()));
            long perImage = FlopCount.forWorkload(workload, shape.size());
            long setupRss = ProcessMemory.rssKb();
            Iteration step;
            if (train) {
                Map<String, Parameter> named = new LinkedHashMap<>();
                List<TensorInfo> infos = new ArrayList<>();
                for (Pair<String, Parameter> p : block.getParameters()) {
                    named.put(p.getKey(), p.getValue());
                    infos.add(new TensorInfo(p.getKey(), p.getValue().getArray().getShape().getShape(), false, null));
                }
                List<Parameter> params = new ArrayList<>(named.values());
                boolean allTrain = params.stream().allMatch(p -> JniUtils.requiresGrad((PtNDArray) p.getArray()));
                if (params.isEmpty() || !allTrain) {
                    throw new IllegalStateException("the TorchScript module's parameters do not require gradients"
                            + " after loading with trainParam=true (" + params.size() + " parameters)");
                }
                // The same SGD update as our full step's (GroupedOptimizer, scripted by default): the ceiling differs
                // from ours in the network only.
                GroupedOptimizer sgd = GroupedOptimizer.build(OptimizerSettings.sgd(LR, MOMENTUM), named,
                        FreezePolicy.trainAll().plan(infos), inputs);
                Loss loss = Loss.softmaxCrossEntropyLoss("cross_entropy");
                step = (xi, yi) -> {
                    try (GradientCollector gc = inputs.getEngine().newGradientCollector()) {
                        NDArray logits = block.forward(ps, new NDList(xi), true).singletonOrThrow();
                        NDArray l = loss.evaluate(new NDList(yi), new NDList(logits));
                        l.getFloat();
                        gc.backward(l);
                    }
                    sgd.step(LR);
                };
                // One untimed step proves the backward reached the first layer: its weight must move.
                float[] first = params.get(0).getArray().toFloatArray();
                once(inputs, x, y, step);
                if (Arrays.equals(first, params.get(0).getArray().toFloatArray())) {
                    throw new IllegalStateException("a TorchScript training step left " + block.getParameters().get(0)
                            .getKey() + " unchanged: no gradient reached it");
                }
            } else {
                step = (xi, yi) -> block.forward(ps, new NDList(xi), false);
            }
            List<Double> times = time(inputs, x, y, step);
            SystemLoad.Snapshot before = timedFrom;
            SystemLoad.Snapshot after = timedTo;
            long peakRss = ProcessMemory.peakRssKb();
            Iteration timed = step;
            Map<String, Double> ops = profile
                    ? OpProfile.of(() -> once(inputs, x, y, timed), PROFILED_ITERATIONS, PROFILED_OPS) : null;
            return new Measurement(workload.configName(), "ours", shape.batch(), shape.size(), threads, times,
                    perImage * shape.batch(), setupRss, peakRss,
                    SystemLoad.foreignPercent(before, after), SystemLoad.kernelPercent(before, after),
                    faultsPerIteration(before, after), null, ops, null);
        }
    }

    /**
     * The data pipeline alone at 224: {@link BatchLoader#measureThroughput} over the training images (listed several
     * times so that one epoch holds far more batches than the loader prefetches), with the training augmentation.
     * Each "iteration" is one loader epoch of {@value #LOADER_BATCHES} timed batches; its time is reported per batch.
     */
    private Measurement loader(Path dataDir) {
        ImageFolderDataset images = new ImageFolderDataset(ImageFolderIndex.scan(dataDir));
        int needed = (LOADER_BATCHES + 1) * shape.batch();
        RepeatedDataset data = new RepeatedDataset(images, (needed + images.size() - 1) / images.size());
        BatchLoader.Options options = BatchLoader.Options.builder()
                .batchSize(shape.batch())
                .shuffle(true)
                .dropLast(true)
                .augment(true)
                .transforms(TransformSpec.defaults().withImageSize(shape.size()))
                .build();
        List<Double> times = new ArrayList<>();
        long setupRss;
        SystemLoad.Snapshot before;
        try (NDManager manager = NDManager.newBaseManager(Device.cpu(), "PyTorch")) {
            setupRss = ProcessMemory.rssKb();
            before = SystemLoad.now();
            for (int i = 0; i < warmup + iters; i++) {
                if (i == warmup) {
                    before = SystemLoad.now();
                }
                double imagesPerSecond;
                try (BatchLoader loader = new BatchLoader(data, manager, options, i)) {
                    imagesPerSecond = loader.measureThroughput(LOADER_BATCHES);
                }
                if (i >= warmup) {
                    times.add(shape.batch() * 1000.0 / imagesPerSecond);
                }
            }
        }
        SystemLoad.Snapshot after = SystemLoad.now();
        return new Measurement(workload.configName(), "ours", shape.batch(), shape.size(), threads, times, 0,
                setupRss, ProcessMemory.peakRssKb(), SystemLoad.foreignPercent(before, after),
                SystemLoad.kernelPercent(before, after), faultsPerIteration(before, after), null, null, null);
    }

    /** Batches timed per loader epoch: many more than the loader's prefetch window. */
    static final int LOADER_BATCHES = 24;

    /** Minor page faults per timed iteration (a loader epoch for the loader). */
    private long faultsPerIteration(SystemLoad.Snapshot before, SystemLoad.Snapshot after) {
        return (after.minorFaults() - before.minorFaults()) / Math.max(1, iters);
    }

    private static long[] randomLabels(int n) {
        SplittableRandom r = new SplittableRandom(1);
        long[] labels = new long[n];
        for (int i = 0; i < n; i++) {
            labels[i] = r.nextInt(CLASSES);
        }
        return labels;
    }
}
