package dev.finetune.train;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import ai.djl.training.ParameterStore;
import dev.finetune.ConfigException;
import dev.finetune.ErrorKind;
import dev.finetune.FinetuneException;
import dev.finetune.checkpoint.Checkpoint;
import dev.finetune.engine.Engines;
import dev.finetune.model.Architecture;
import dev.finetune.model.FastPathReport;
import dev.finetune.model.FoldedPrefix;
import dev.finetune.model.FoldedStages;
import dev.finetune.model.FrozenPrefix;
import dev.finetune.model.GuardedPrefix;
import dev.finetune.model.MaxPoolIndices;
import dev.finetune.model.Network;
import dev.finetune.model.Bf16Prefix;
import dev.finetune.model.Precision;
import dev.finetune.model.ResNet;
import dev.finetune.model.ResNetArch;
import dev.finetune.model.StepScopes;
import dev.finetune.optim.AddedGroup;
import dev.finetune.optim.GroupedOptimizer;
import dev.finetune.optim.OptimizerSettings;
import dev.finetune.policy.FreezePlan;
import dev.finetune.policy.FreezePolicy;
import dev.finetune.weights.KeyMapping;
import dev.finetune.weights.LoadReport;
import dev.finetune.weights.WeightLoader;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * The library's front door: a pretrained torchvision CNN with a freeze policy applied, a new head, and an optimizer over only
 * the trainable parameters. One training step, one no-graph forward, and re-freezing for gradual unfreezing.
 *
 * <pre>{@code
 * try (FineTuner ft = FineTuner.builder()
 *         .checkpoint(Checkpoints.read("resnet18-f37072fd.pth"))
 *         .headClasses(100)
 *         .policy(FreezePolicy.linearProbe())
 *         .optimizer(OptimizerSettings.sgd(0.01, 0.9))
 *         .build()) {
 *     float loss = ft.trainStep(images, labels);
 *     NDArray logits = ft.predictLogits(images);
 * }
 * }</pre>
 */
public final class FineTuner implements AutoCloseable {
    /**
     * The size of conv1's float32 output over which the check's reference run takes the stem's backward in chunks
     * ({@link #stagewiseStep}): at 32×224 the stem's saved maps and gradients alone took that run from 348 to ~940 MB,
     * above PyTorch's whole bf16 autocast step (docs/performance.md); at 128×64 (exactly this size) it stays whole.
     */
    static final long STEM_CHUNK_BYTES = 32L << 20;

    private final NDManager manager;
    private final Network model;
    private final LoadReport loadReport;
    private final OptimizerSettings optimizerSettings;
    private final CrossEntropy loss;
    /** {@code clip_grad_norm_}'s max norm before each step, or null for none. */
    private final Double clipGradNorm;
    private double lastGradientNorm = Double.NaN;
    private final ParameterStore parameterStore;
    private final boolean foldFrozenPrefix;
    private final boolean releaseIntermediates;
    private final FoldedPrefix.Layout foldLayout;
    /** Inputs below this many pixels (N·H·W) run the folded prefix NCHW ({@link GuardedPrefix#contiguousBelow}). */
    private final long contiguousBelowPixels;
    private final Precision prefixPrecision;
    private FreezePlan plan;
    private GroupedOptimizer optimizer;
    private FrozenPrefix folded;
    /**
     * Stages {@code [0, noGradStages)} hold no trainable parameter: a training step runs them with no autograd, so
     * their intermediates are freed stage by stage instead of living until the step ends.
     */
    private int noGradStages;
    /** Reports of folded prefixes replaced by a re-plan (gradual unfreezing), oldest first. */
    private final List<FastPathReport> pastReports = new ArrayList<>();
    /** Optimizer groups added by gradual unfreezing, oldest first. */
    private final List<AddedGroup> addedGroups = new ArrayList<>();
    private long planVersion;
    /** Whether training steps run channels-last, and the guard that checks it on this host. */
    private final ChannelsLastTraining channelsLast;
    /** Whether training steps run in bf16 mixed precision and the guard that checks it; null unless asked for. */
    private final Bf16MixedTraining mixed;
    /** The ResNet training forward as one TorchScript call (bf16-mixed steps); made on first use. */
    private dev.finetune.model.ResNetTrainScript trainScript;

    /** The seed {@link #seedNextStep} set for the next {@link #backward}, or null. */
    private Integer pendingSeed;

    private FineTuner(Builder b) {
        Engine engine = Engines.pytorch(b.threads);
        if (b.seed != null) {
            engine.setRandomSeed(b.seed);
        }
        manager = NDManager.newBaseManager();
        try {
            boolean newHead = b.checkpoint != null && b.headClasses != null;
            // A new head is built at its own size with nn.Linear's default initialization: the checkpoint's fc is
            // reported and not loaded (model.fc = nn.Linear(512, classes)).
            int classes = b.headClasses != null ? b.headClasses : checkpointClasses(b.checkpoint, b.arch, 1000);
            model = b.arch.create(classes).initialize(manager);
            loadReport = b.checkpoint == null
                    ? null
                    : WeightLoader.load(model, b.checkpoint, new WeightLoader.Options(b.mapping, b.strict, newHead));
            if (b.dropout != null) {
                model.setDropout(b.dropout);
            }
            parameterStore = new ParameterStore(manager, false);
            optimizerSettings = b.optimizer;
            loss = b.loss;
            clipGradNorm = b.clipGradNorm;
            foldFrozenPrefix = b.foldFrozenPrefix;
            releaseIntermediates = b.releaseIntermediates;
            foldLayout = b.foldLayout;
            contiguousBelowPixels = b.contiguousBelowPixels;
            prefixPrecision = b.prefixPrecision;
            channelsLast = new ChannelsLastTraining(b.channelsLastTraining);
            mixed = b.prefixPrecision == Precision.BF16_MIXED ? new Bf16MixedTraining() : null;
            checkPrecision(b.prefixPrecision);
            applyPolicy(b.policy);
            if (prefixPrecision == Precision.BF16 && foldedStages() == 0) {
                throw new dev.finetune.ConfigException("train.precision", "bf16 runs the frozen, BN-folded prefix,"
                        + " and this freeze policy leaves none: the stem trains, or a frozen stage keeps BatchNorm in"
                        + " train mode. Freeze at least the stem (e.g. policies/last-stage.yaml), or remove"
                        + " train.precision");
            }
        } catch (RuntimeException e) {
            manager.close();
            throw e;
        }
    }

    private static int checkpointClasses(Checkpoint c, Architecture arch, int fallback) {
        return c == null ? fallback : c.headClasses(arch.headName()).orElse(fallback);
    }

    /** A builder with torchvision's ResNet-18, strict loading, everything trainable and SGD(0.01, momentum 0.9). */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * Applies {@code policy} (a new plan, requiresGrad and BN modes set) and rebuilds the optimizer over the new
     * trainable set, carrying over the state of parameters that stay trainable.
     */
    public FreezePlan applyPolicy(FreezePolicy policy) {
        plan = FreezePlan.applyTo(model, policy);
        planVersion++;
        noGradStages = model.stageNames().size() - 1;
        for (String name : plan.trainableNames()) {
            noGradStages = Math.min(noGradStages, model.stageIndexOf(name));
        }
        refold();
        GroupedOptimizer old = optimizer;
        optimizer = GroupedOptimizer.build(optimizerSettings, model.namedTensors(), plan, addedGroups, manager);
        if (old != null) {
            optimizer.importState(old.exportState());
            old.close();
        }
        return plan;
    }

    /**
     * Gradual unfreezing, as Lightning's {@code unfreeze_and_add_param_group}: appends {@code rule} (a train rule) to
     * the policy, applies it, and puts the parameters it newly makes trainable into their own optimizer group with
     * learning rate {@code base lr × lrMult} (PyTorch's {@code add_param_group}). Parameters that were trainable before
     * keep their group and their state.
     *
     * @return the new plan
     */
    public FreezePlan unfreeze(FreezePolicy.Rule rule, double lrMult) {
        if (!rule.train()) {
            throw new IllegalArgumentException(rule.where() + ": an unfreeze step needs a train rule");
        }
        Set<String> before = new HashSet<>(plan.trainableNames());
        FreezePolicy next = plan.policy().withRule(rule);
        List<String> added = next.plan(FreezePlan.describe(model)).trainableNames().stream()
                .filter(n -> !before.contains(n))
                .toList();
        addedGroups.add(new AddedGroup(rule.where(), lrMult, added));
        return applyPolicy(next);
    }

    /** Counts the plans applied so far: it changes whenever what trains may have changed. */
    public long planVersion() {
        return planVersion;
    }

    /** The optimizer groups added by {@link #unfreeze}, oldest first. */
    public List<AddedGroup> addedGroups() {
        return List.copyOf(addedGroups);
    }

    /**
     * Folds the BatchNorm layers of the frozen prefix into their convolutions (a fixed function: frozen weights,
     * frozen statistics) and runs it channels-last (NCHW on small inputs) with no autograd, behind a
     * {@link GuardedPrefix} that checks it against the plain network on this host. Called whenever the plan changes;
     * the fold is a snapshot of weights that cannot change while they stay frozen.
     */
    private void refold() {
        if (folded != null) {
            pastReports.add(folded.report());
            folded.close();
            folded = null;
        }
        if (!foldFrozenPrefix) {
            return;
        }
        if (model instanceof ResNet resnet) {
            int k = FoldedPrefix.foldablePrefix(resnet);
            if (k > 0) {
                folded = prefixPrecision != Precision.FP32
                        ? Bf16Prefix.fold(resnet, parameterStore, k, manager)
                        : GuardedPrefix.fold(resnet, parameterStore, k, foldLayout, manager)
                                .contiguousBelow(contiguousBelowPixels);
            }
        } else {
            int k = FoldedStages.foldablePrefix(model);
            if (k > 0) {
                folded = FoldedStages.fold(model, parameterStore, k, manager);
            }
        }
    }

    /**
     * Refuses {@code bf16} where it cannot run: a CPU without bf16 instructions, a family other than ResNet (the only
     * one {@link Bf16Prefix} folds), folding switched off. Said as {@code train.precision} errors (exit 3), naming the fix.
     */
    private void checkPrecision(Precision p) {
        if (p == Precision.FP32) {
            return;
        }
        String why = p.whyUnavailable(model);
        if (why != null) {
            throw new dev.finetune.ConfigException("train.precision", why + "; remove train.precision or set it to"
                    + " fp32");
        }
        if (p == Precision.BF16 && !foldFrozenPrefix) {
            throw new dev.finetune.ConfigException("train.precision", "bf16 runs the BN-folded frozen prefix, and"
                    + " folding is off (train.fold_frozen_bn: false); remove one of the two");
        }
    }

    /** The arithmetic of the frozen prefix ({@code train.precision}). */
    public Precision prefixPrecision() {
        return prefixPrecision;
    }

    /** Stages {@code [0, k)} of the folded frozen prefix in use, 0 when none (or when the guard switched it off). */
    public int foldedStages() {
        return folded == null || !folded.isFolded() ? 0 : folded.toStage();
    }

    /**
     * Checks the folded frozen prefix against the plain network now, on random batches of these input shapes
     * (N, 3, H, W), so that {@link #fastPathReports()} says what runs before any training step. Without this, the
     * check happens on the first real batch of each shape.
     */
    public void verifyFastPath(Shape... inputShapes) {
        if (folded != null) {
            for (Shape s : inputShapes) {
                folded.verify(s, manager);
            }
        }
    }

    /**
     * What the fast-path guards checked and decided: one report per folded prefix this fine-tuner has used (a re-plan
     * folds anew), then one for channels-last training steps once it has been checked ({@link ChannelsLastTraining}),
     * then, if it switched its path off, this host's max-pool check ({@link MaxPoolIndices}: process-wide, a property
     * of the host's kernels, so not repeated in every fine-tuner's report while it passes); empty when none ran.
     */
    public List<FastPathReport> fastPathReports() {
        List<FastPathReport> out = new ArrayList<>(pastReports);
        if (folded != null) {
            out.add(folded.report());
        }
        for (CheckedStepPath path : mixed == null ? List.of(channelsLast) : List.of(mixed, channelsLast)) {
            FastPathReport training = path.report();
            if (training != null) {
                out.add(training);
            }
        }
        FastPathReport pools = MaxPoolIndices.report();
        if (pools != null && pools.degraded()) {
            out.add(pools);
        }
        return out;
    }

    /**
     * The input of stage {@code toStage} for a batch entering at {@code fromStage}: through the folded prefix where it
     * covers the way, then the unfolded stages, all with no autograd (these stages have nothing to train).
     */
    private NDArray throughFrozen(NDArray inputs, int fromStage, int toStage) {
        NDArray x = inputs;
        int at = fromStage;
        try (Engines.NoGrad g = Engines.noGrad()) {
            if (folded != null && at == 0 && toStage >= folded.toStage()) {
                x = folded.forward(x);
                at = folded.toStage();
            }
            if (at < toStage) {
                x = model.forwardStages(parameterStore, new NDList(x), true, at, toStage).singletonOrThrow();
            }
        }
        return x;
    }

    /** Forward with autograd, cross-entropy loss, backward, one optimizer step; returns the loss. */
    public float trainStep(NDArray images, NDArray labels, double lr) {
        return trainStep(images, labels, lr, 0);
    }

    /**
     * One step whose input enters at stage {@code fromStage} of {@link Network#stageNames()}: 0 for images, or the
     * cached output of a frozen prefix (the feature cache).
     */
    public float trainStep(NDArray inputs, NDArray labels, double lr, int fromStage) {
        float value = backward(inputs, labels, fromStage, 1.0);
        applyStep(lr);
        return value;
    }

    /**
     * Forward with autograd and backward of {@code lossScale} × the loss, adding to the gradients, with no optimizer
     * step: one micro-batch of gradient accumulation ({@link #applyStep} ends the group). Returns the unscaled loss.
     */
    public float backward(NDArray inputs, NDArray labels, int fromStage, double lossScale) {
        Integer seed = pendingSeed;
        pendingSeed = null;
        try (NDManager step = manager.newSubManager()) {
            int start = fromStage;
            // A view of the caller's batch owned by this step: the ops below put their results in their input's
            // manager, so every intermediate a block does not free itself is freed when the step ends, not when the
            // caller's manager closes (a batch reused across steps would otherwise keep each step's leftovers).
            NDArray x = alias(inputs, step);
            // Stages before the first trainable parameter need no graph (nothing upstream requires a gradient), so
            // they run as inference does: no autograd, each stage's intermediates freed once the next has its input.
            // Their BN layers still train where the plan says so; values and statistics are those of the eager step.
            int frozenTo = Math.max(noGradStages, folded == null ? 0 : folded.toStage());
            if (fromStage < frozenTo) {
                x = throughFrozen(x, fromStage, frozenTo);
                x.attach(step);
                start = frozenTo;
            }
            NDArray in = x;
            final int from = start;
            if (start == 0) {
                // The graph starts at the input and keeps every block's full-resolution maps for the backward: under
                // FINETUNE_MALLOC=lean-steps, large inputs give such maps their own mappings (MallocPolicy).
                dev.finetune.engine.MallocPolicy.beforeFullStep(in.size() * in.getDataType().getNumOfBytes());
            }
            if (mixed != null && mixed.wants(model, start)) {
                // bf16 runs NCHW (the script's layout); channels-last is not combined with it.
                if (!mixed.checkDue(in.getShape())) {
                    float value = autogradStep(in, labels, start, lossScale, step, true, true);
                    simulatedFault(mixed);
                    return value;
                }
                if (model.dropout() > 0 && seed == null) {
                    // The check runs the step twice; with dropout both runs must draw the same masks, which needs the
                    // step's seed (seedNextStep). Without one, this step stays float32 and unchecked.
                    return autogradStep(in, labels, start, lossScale, step, true, false);
                }
                return checkedStep(in, labels, start, lossScale, step, seed, mixed,
                        run -> autogradStep(alias(in, run), labels, from, lossScale, run, false, true));
            }
            if (!channelsLast.wants(model, x.getShape(), start)) {
                return autogradStep(x, labels, start, lossScale, step, true, false);
            }
            if (!channelsLast.checkDue(x.getShape())) {
                float value = autogradStep(channelsLastCopy(x, step), labels, start, lossScale, step, true, false);
                simulatedFault(channelsLast);
                return value;
            }
            if (model.dropout() > 0 && seed == null) {
                // As above: without the step's seed, this step stays NCHW and unchecked.
                return autogradStep(x, labels, start, lossScale, step, true, false);
            }
            return checkedStep(x, labels, start, lossScale, step, seed, channelsLast,
                    run -> autogradStep(channelsLastCopy(in, run), labels, from, lossScale, run, false, false));
        }
    }

    /**
     * Seeds libtorch's generator for the next {@link #backward} (dropout masks) and remembers the seed, so that the
     * channels-last check ({@link ChannelsLastTraining}) can draw the same masks in both of its runs.
     */
    public void seedNextStep(int seed) {
        manager.getEngine().setRandomSeed(seed);
        pendingSeed = seed;
    }

    /** A view of {@code x} (same storage, same strides) owned by {@code owner}. */
    private static NDArray alias(NDArray x, NDManager owner) {
        NDArray a = x.reshape(x.getShape());
        a.attach(owner);
        return a;
    }

    /** The same batch as {@code x}, stored channels-last, owned by {@code owner}; its intermediates freed. */
    private static NDArray channelsLastCopy(NDArray x, NDManager owner) {
        try (NDManager sub = owner.newSubManager(); Engines.NoGrad g = Engines.noGrad()) {
            g.getClass();
            NDArray in = alias(x, sub);
            NDArray cl = FoldedPrefix.toChannelsLast(in);
            cl.attach(owner);
            return cl;
        }
    }

    /**
     * The step run twice from the same state — the plain float32 NCHW way, then {@code path}'s ({@code candidate}, a
     * step in the given manager returning the loss) — and compared ({@link CheckedStepPath}): gradients accumulated
     * before this call, BatchNorm running statistics and (with {@code seed}) dropout's draws are restored between the
     * two runs. Leaves the path's result when it passes, else the plain one.
     */
    private float checkedStep(NDArray x, NDArray labels, int start, double lossScale, NDManager step,
            Integer seed, CheckedStepPath path, java.util.function.ToDoubleFunction<NDManager> candidate) {
        List<ai.djl.nn.Parameter> trainable = new ArrayList<>();
        List<String> names = new ArrayList<>();
        for (dev.finetune.optim.ParamSlot slot : optimizer.slots()) {
            trainable.add(slot.parameter());
            names.add(slot.name());
        }
        // Running statistics move in a bf16-mixed step with BN in train mode, so both runs start from the same ones and
        // the kept run's are left (channels-last never runs train-mode BN: there they stay as they were).
        List<ai.djl.nn.Parameter> stats = runningStatistics();
        try (NDManager keep = step.newSubManager()) {
            List<NDArray> gradBefore = gradients(trainable, keep, true);
            List<NDArray> statsBefore = copies(stats, keep);
            List<dev.finetune.model.BatchNorm2d> bns = batchNormLayers();
            long[] trackedBefore = batchCounts(bns);
            if (seed != null) {
                manager.getEngine().setRandomSeed(seed);
            }
            // Each run in its own manager, closed when it ends: the tensors autograd saved stay referenced by their
            // NDArray handles until then, and two runs' worth at once would double the step's peak memory.
            // The check's float32 run goes stage by stage for ResNets (stagewiseStep: one stage's saved maps at a time);
            // the maps it keeps get their own mappings under glibc's defaults until both runs are done (MallocPolicy).
            dev.finetune.engine.MallocPolicy.beforeCheck();
            float lossNchw;
            float lossCl;
            List<NDArray> gradNchw;
            List<NDArray> statsNchw;
            long[] trackedNchw;
            try {
                try (NDManager run = step.newSubManager()) {
                    lossNchw = stagewiseStep(alias(x, run), labels, start, lossScale, run, STEM_CHUNK_BYTES);
                }
                gradNchw = gradients(trainable, keep);
                statsNchw = copies(stats, keep);
                trackedNchw = batchCounts(bns);
                restoreGradients(trainable, gradBefore);
                restore(stats, statsBefore);
                setBatchCounts(bns, trackedBefore);
                if (seed != null) {
                    manager.getEngine().setRandomSeed(seed);
                }
                try (NDManager run = step.newSubManager()) {
                    lossCl = (float) candidate.applyAsDouble(run);
                }
            } finally {
                dev.finetune.engine.MallocPolicy.afterCheck();
            }
            simulatedFault(path);
            // Per top-level module (conv1, bn1, layer1 ... fc): |g_cl - g_nchw| / |g_nchw - g_before|, the step's own
            // contribution; a module whose gradient is under 1e-3 of the whole step's is measured against that floor.
            // One scope per parameter: each difference and its float64 square are 20 bytes per element; kept for
            // every parameter to the end of the loop they were 470 MB for ResNet-18, which set a checked step's peak
            // wherever its own activations are smaller (bf16-mixed at 128x64: 978 MB, now 719-778).
            java.util.Map<String, double[]> perModule = new java.util.LinkedHashMap<>();
            double total = 0;
            for (int i = 0; i < trainable.size(); i++) {
                double d;
                double r;
                try (ai.djl.ndarray.NDScope scope = new ai.djl.ndarray.NDScope()) {
                    scope.suppressNotUsedWarning();
                    NDArray now = trainable.get(i).getArray().getGradient();
                    d = CheckedStepPath.sumSq(now.sub(gradNchw.get(i)));
                    r = CheckedStepPath.sumSq(gradBefore.get(i) == null ? gradNchw.get(i)
                            : gradNchw.get(i).sub(gradBefore.get(i)));
                }
                String module = names.get(i).split("\\.")[0];
                double[] acc = perModule.computeIfAbsent(module, k -> new double[2]);
                acc[0] += d;
                acc[1] += r;
                total += r;
            }
            double worst = 0;
            String worstModule = "-";
            for (var e : perModule.entrySet()) {
                double rel = CheckedStepPath.relative(e.getValue()[0], Math.max(e.getValue()[1], 1e-6 * total));
                if (rel > worst || Double.isNaN(rel)) {
                    worst = Double.isNaN(rel) ? Double.POSITIVE_INFINITY : rel;
                    worstModule = e.getKey();
                }
            }
            double worstStat = 0;
            for (int i = 0; i < stats.size(); i++) {
                float[] a = stats.get(i).getArray().toType(ai.djl.ndarray.types.DataType.FLOAT32, false)
                        .toFloatArray();
                float[] b = statsNchw.get(i).toType(ai.djl.ndarray.types.DataType.FLOAT32, false).toFloatArray();
                for (int j = 0; j < a.length; j++) {
                    double d = Math.abs((double) a[j] - b[j]) / Math.max(1, Math.abs(b[j]));
                    worstStat = Double.isNaN(d) ? Double.POSITIVE_INFINITY : Math.max(worstStat, d);
                }
            }
            if (path.record(x.getShape(), lossNchw, lossCl, worst, worstModule, worstStat)) {
                return lossCl;
            }
            restoreGradients(trainable, gradNchw);
            restore(stats, statsNchw);
            setBatchCounts(bns, trackedNchw);
            return lossNchw;
        }
    }

    /**
     * {@link dev.finetune.model.KernelFaults}' simulated defect of {@code path} (channels-last or bf16-mixed), after a
     * step on it; nothing unless a test set one.
     */
    private void simulatedFault(CheckedStepPath path) {
        List<String> names = optimizer.slots().stream().map(dev.finetune.optim.ParamSlot::name).toList();
        List<ai.djl.nn.Parameter> params = optimizer.slots().stream().map(dev.finetune.optim.ParamSlot::parameter)
                .toList();
        if (path == mixed) {
            dev.finetune.model.KernelFaults.applyBf16Training(names, params);
        } else {
            dev.finetune.model.KernelFaults.applyChannelsLastTraining(names, params);
        }
    }

    /**
     * How training steps on images of {@code batch} × 3 × {@code size} × {@code size} will run, in words, when
     * channels-last training was asked for ({@code train.channels_last}); null when it was not (NCHW).
     */
    public String trainingStepLayout(int batch, int size) {
        int start = Math.max(noGradStages, folded == null ? 0 : folded.toStage());
        if (mixed != null) {
            String from = model.stageNames().get(Math.min(start, model.stageNames().size() - 1));
            String why = mixed.whyNot(model, start);
            if (why == null) {
                return "bf16 mixed precision from " + from + " (train.precision: bf16-mixed; as torch.autocast:"
                        + " convolutions and the head in bfloat16, float32 weights, gradients and optimizer state),"
                        + " one TorchScript call, checked against the float32 step on the first step of each input"
                        + " shape and every " + mixed.checkEvery() + " steps";
            }
            return "float32 from " + from + " (train.precision: bf16-mixed does not run here: " + why + ")";
        }
        return channelsLast.explain(model, new Shape(batch, 3, size, size), start);
    }

    /** The channels-last guard's periodic re-check every {@code steps} steps (tests; default 500). */
    void channelsLastCheckEvery(long steps) {
        channelsLast.checkEvery(steps);
    }

    /** Copies of the parameters' gradients (zeros where none exists yet), owned by {@code owner}. */
    private static List<NDArray> gradients(List<ai.djl.nn.Parameter> params, NDManager owner) {
        return gradients(params, owner, false);
    }

    /**
     * Copies of the parameters' gradients, owned by {@code owner}; with {@code zeroAsNull}, null for a gradient that
     * does not exist or is all zeros (the usual state before a step's first micro-batch: ResNet-18's would be a 45 MB
     * copy of zeros kept through the check's candidate run), else zeros where none exists.
     */
    private static List<NDArray> gradients(List<ai.djl.nn.Parameter> params, NDManager owner, boolean zeroAsNull) {
        List<NDArray> out = new ArrayList<>();
        for (ai.djl.nn.Parameter p : params) {
            NDArray g = ai.djl.pytorch.jni.JniUtils.getGradient((ai.djl.pytorch.engine.PtNDArray) p.getArray());
            boolean zero = g == null;
            if (!zero && zeroAsNull) {
                try (ai.djl.ndarray.NDScope scope = new ai.djl.ndarray.NDScope()) {
                    scope.suppressNotUsedWarning();
                    zero = g.abs().max().getFloat() == 0; // NaN: not zero, kept
                }
            }
            if (zero) {
                if (g != null) {
                    g.close();
                }
                out.add(zeroAsNull ? null : owner.zeros(p.getArray().getShape(), p.getArray().getDataType()));
            } else {
                NDArray c = g.duplicate();
                c.attach(owner);
                g.close();
                out.add(c);
            }
        }
        return out;
    }

    private static List<NDArray> copies(List<ai.djl.nn.Parameter> params, NDManager owner) {
        List<NDArray> out = new ArrayList<>();
        for (ai.djl.nn.Parameter p : params) {
            NDArray c = p.getArray().duplicate();
            c.attach(owner);
            out.add(c);
        }
        return out;
    }

    /** Sets each parameter's gradient to {@code values} exactly (zero it, then add). */
    private static void restoreGradients(List<ai.djl.nn.Parameter> params, List<NDArray> values) {
        for (int i = 0; i < params.size(); i++) {
            ai.djl.pytorch.engine.PtNDArray p = (ai.djl.pytorch.engine.PtNDArray) params.get(i).getArray();
            ai.djl.pytorch.jni.JniUtils.zeroGrad(p);
            NDArray g = ai.djl.pytorch.jni.JniUtils.getGradient(p);
            if (g != null) { // null: a parameter no run reached, whose gradient is zero in both
                if (values.get(i) != null) { // null: zero
                    g.addi(values.get(i));
                }
                g.close();
            }
        }
    }

    /** Sets each parameter's value to {@code values} exactly (running statistics: finite, so 0 * v + new is exact). */
    private static void restore(List<ai.djl.nn.Parameter> params, List<NDArray> values) {
        try (Engines.NoGrad g = Engines.noGrad()) {
            g.getClass();
            for (int i = 0; i < params.size(); i++) {
                params.get(i).getArray().muli(0).addi(values.get(i));
            }
        }
    }

    /**
     * Forward of stages {@code [start, end)} with autograd from {@code x}, the loss, and backward of
     * {@code lossScale} × the loss. A non-finite loss zeroes the gradients and, when {@code throwOnNonFinite}, fails as
     * {@link ErrorKind#DIVERGED}; otherwise it is returned (the channels-last check judges it).
     */
    private float autogradStep(NDArray x, NDArray labels, int start, double lossScale, NDManager step,
            boolean throwOnNonFinite, boolean bf16) {
        try (GradientCollector gc = manager.getEngine().newGradientCollector()) {
            // Each intermediate is freed once consumed, unless autograd saved it (StepScopes.releasing); the script
            // frees its own by libtorch's reference counts.
            // Float32 steps stay on the Java blocks: the script in float32 (bit-equal to them, ResNetTrainScriptTest)
            // measured 0-4 % faster in one JVM, alternating (docs/performance.md, 2026-12-05 third session).
            java.util.function.Supplier<NDArray> forward = bf16
                    ? () -> trainScript().forward(x, start, true, true)
                    : () -> model.forwardStages(parameterStore, new NDList(x), true, start,
                            model.stageNames().size()).singletonOrThrow();
            NDArray logits = releaseIntermediates ? StepScopes.releasing(forward) : forward.get();
            NDArray lossValue = loss.evaluate(alias(labels, step), logits);
            lossValue.attach(step);
            logits.attach(step);
            float value = lossValue.getFloat();
            if (!Float.isFinite(value)) {
                optimizer.zeroGrad();
                if (!throwOnNonFinite) {
                    return value;
                }
                throw diverged(value);
            }
            gc.backward(lossScale == 1.0 ? lossValue
                    : lossValue.mul(dev.finetune.model.Scalars.of(lossValue, (float) lossScale)));
            return value;
        }
    }

    /**
     * The plain float32 step of {@link #autogradStep} (stages {@code [start, end)}, loss, backward of
     * {@code lossScale} × the loss, running statistics moved once), computed one stage at a time so that only one
     * stage's saved maps are alive at once: a forward with no autograd keeps each stage's input, then from the head
     * back each stage runs again with autograd from its kept input and is back-propagated from its output with the
     * gradient its successor left on that input. The same ops on the same values: gradients, statistics and loss equal
     * the one-graph step's ({@code StagewiseStepTest}, bit for bit on this engine). When one stem's conv1 output
     * would be over {@code stemChunkBytes}, the stem's backward runs a few images at a time
     * ({@link ResNet#stemBackwardInChunks}): its gradients then equal the one graph's up to float32 rounding, the
     * running statistics and loss still exactly.
     *
     * <p>Why: this is the reference run of the fast-path check ({@link #checkedStep}), and a whole float32 graph of
     * ResNet-18 at 32×224 holds about 1 GB of saved maps, more than PyTorch's entire bf16 autocast step peaks at; the
     * check's run set the peak of every bf16-mixed run (docs/performance.md). Only ResNets: their stages draw no
     * random numbers before the head (dropout), so running a stage twice changes nothing; other families, and a step
     * of the head alone, run as one graph.
     */
    private float stagewiseStep(NDArray x, NDArray labels, int start, double lossScale, NDManager run,
            long stemChunkBytes) {
        int end = model.stageNames().size();
        if (!(model instanceof ResNet resnet) || end - start < 2) {
            return autogradStep(x, labels, start, lossScale, run, true, false);
        }
        int stemChunk = start == 0 ? resnet.stemChunk(x.getShape(), stemChunkBytes) : 0;
        boolean chunkedStem = start == 0 && stemChunk < x.getShape().get(0);
        List<ai.djl.nn.Parameter> stats = runningStatistics();
        List<dev.finetune.model.BatchNorm2d> bns = batchNormLayers();
        long[] tracked = batchCounts(bns);
        // The input of each stage, from a forward with no graph; its BN layers move their statistics, which are put
        // back so that the graph's forward below moves them once, as the one-graph step does — except the stem's
        // when it runs in chunks (no graph of it runs forward then): bn1 keeps what this forward moved.
        List<NDArray> inputs = new ArrayList<>(List.of(x));
        try (NDManager saved = run.newSubManager()) {
            List<NDArray> statsBefore = copies(stats, saved);
            try (Engines.NoGrad g = Engines.noGrad()) {
                g.getClass();
                NDArray h = x;
                for (int s = start; s < end - 1; s++) {
                    h = model.forwardStages(parameterStore, new NDList(h), true, s, s + 1).singletonOrThrow();
                    h.attach(run);
                    inputs.add(h);
                }
            }
            dev.finetune.model.BatchNorm2d stemNorm = resnet.stemNorm();
            List<ai.djl.nn.Parameter> stemStats = List.of(stemNorm.runningMean(), stemNorm.runningVar());
            List<NDArray> stemMoved = chunkedStem ? copies(stemStats, saved) : List.of();
            long stemCount = stemNorm.numBatchesTracked();
            restore(stats, statsBefore);
            setBatchCounts(bns, tracked);
            if (chunkedStem) {
                restore(stemStats, stemMoved);
                stemNorm.setNumBatchesTracked(stemCount);
            }
        }
        float value = Float.NaN;
        NDArray upstream = null; // the gradient with respect to the output of the stage being run
        try (GradientCollector gc = manager.getEngine().newGradientCollector()) {
            for (int s = end - 1; s >= start; s--) {
                try (NDManager stage = run.newSubManager()) {
                    NDArray in = inputs.get(s - start);
                    in.attach(stage); // the stage's ops attach to their input's manager: freed with this stage
                    if (s > start) {
                        in.setRequiresGradient(true);
                    }
                    final int at = s;
                    java.util.function.Supplier<NDArray> forward = () -> model.forwardStages(parameterStore,
                            new NDList(in), true, at, at + 1).singletonOrThrow();
                    if (s == 0 && chunkedStem) {
                        // The stem's maps are the largest of the network (about 600 MB at 32×224 with their
                        // gradients): a few images at a time.
                        resnet.stemBackwardInChunks(parameterStore, in, upstream, stemChunk);
                    } else if (s == end - 1) {
                        NDArray out = releaseIntermediates ? StepScopes.releasing(forward) : forward.get();
                        NDArray lossValue = loss.evaluate(alias(labels, stage), out);
                        value = lossValue.getFloat();
                        if (!Float.isFinite(value)) {
                            optimizer.zeroGrad();
                            throw diverged(value);
                        }
                        gc.backward(lossScale == 1.0 ? lossValue
                                : lossValue.mul(dev.finetune.model.Scalars.of(lossValue, (float) lossScale)));
                    } else {
                        NDArray out = releaseIntermediates ? StepScopes.releasing(forward) : forward.get();
                        Engines.backward(out, upstream);
                    }
                    if (upstream != null) {
                        upstream.close();
                        upstream = null;
                    }
                    if (s > start) {
                        NDArray grad = in.getGradient();
                        upstream = grad.duplicate();
                        upstream.attach(run);
                        grad.close();
                    }
                }
            }
        } finally {
            if (upstream != null) {
                upstream.close();
            }
        }
        return value;
    }

    /**
     * What the fast-path check's reference run computes for a batch entering the autograd part at {@code start}
     * ({@link #stagewiseStep}), adding to the gradients like {@link #backward}; for tests, which compare it with the
     * one-graph step.
     */
    float referenceStep(NDArray x, NDArray labels, int start, double lossScale, long stemChunkBytes) {
        try (NDManager step = manager.newSubManager()) {
            return stagewiseStep(alias(x, step), labels, start, lossScale, step, stemChunkBytes);
        }
    }

    /** Every BatchNorm layer of the model, in order. */
    private List<dev.finetune.model.BatchNorm2d> batchNormLayers() {
        return model.batchNorms().stream().map(Network.NamedBatchNorm::bn).toList();
    }

    /** Each layer's {@code num_batches_tracked}. */
    private static long[] batchCounts(List<dev.finetune.model.BatchNorm2d> bns) {
        return bns.stream().mapToLong(dev.finetune.model.BatchNorm2d::numBatchesTracked).toArray();
    }

    /** Sets each layer's {@code num_batches_tracked} back to {@code counts} ({@link #batchCounts}). */
    private static void setBatchCounts(List<dev.finetune.model.BatchNorm2d> bns, long[] counts) {
        for (int i = 0; i < bns.size(); i++) {
            bns.get(i).setNumBatchesTracked(counts[i]);
        }
    }

    /** Every BatchNorm layer's running mean and variance, in the model's order. */
    private List<ai.djl.nn.Parameter> runningStatistics() {
        List<ai.djl.nn.Parameter> stats = new ArrayList<>();
        model.namedTensors().forEach((name, p) -> {
            if (name.endsWith(".running_mean") || name.endsWith(".running_var")) {
                stats.add(p);
            }
        });
        return stats;
    }

    /** The step's failure on a non-finite loss, naming what to change. */
    private FinetuneException diverged(float value) {
        return new FinetuneException(ErrorKind.DIVERGED, "loss is " + value + "; lower optimizer.lr (now "
                + optimizerSettings.lr() + "), check the input normalization, or add warm-up");
    }

    private dev.finetune.model.ResNetTrainScript trainScript() {
        if (trainScript == null) {
            trainScript = new dev.finetune.model.ResNetTrainScript((ResNet) model, manager);
        }
        return trainScript;
    }

    /** Clips the accumulated gradients (when asked to) and takes one optimizer step, which zeroes them. */
    public void applyStep(double lr) {
        if (clipGradNorm != null) {
            lastGradientNorm = optimizer.clipGradNorm(clipGradNorm);
        }
        optimizer.step(lr);
    }

    /** The training loss. */
    public CrossEntropy loss() {
        return loss;
    }

    /** The gradients' total norm before clipping in the last step; NaN when not clipping. */
    public double lastGradientNorm() {
        return lastGradientNorm;
    }

    /** One step at the optimizer's base learning rate. */
    public float trainStep(NDArray images, NDArray labels) {
        return trainStep(images, labels, optimizerSettings.lr());
    }

    /** Logits with no autograd graph on this thread (BN in eval mode, dropout off). */
    public NDArray predictLogits(NDArray images) {
        return model.inferLogits(parameterStore, images);
    }

    /**
     * Stages {@code [0, toStage)} with no autograd graph and the BN modes of training (frozen-stats layers use their
     * statistics): the input of a feature-cached training step.
     */
    public NDArray prefixFeatures(NDArray images, int toStage) {
        return throughFrozen(images, 0, toStage);
    }

    /** Mean cross-entropy of {@code logits} against {@code labels}. */
    public NDArray loss(NDArray labels, NDArray logits) {
        return loss.evaluate(labels, logits);
    }

    /** The network: torchvision's module tree and parameter names. */
    public Network model() {
        return model;
    }

    /** The engine memory scope everything of this fine-tuner lives in; closed with it. */
    public NDManager manager() {
        return manager;
    }

    /** DJL's parameter store the network reads its parameters through (for forwards outside this class). */
    public ParameterStore parameterStore() {
        return parameterStore;
    }

    /** The plan in effect: every tensor's fate and the rule that decided it, every BN layer's mode. */
    public FreezePlan plan() {
        return plan;
    }

    /** The optimizer over the trainable parameters, with its groups and state. */
    public GroupedOptimizer optimizer() {
        return optimizer;
    }

    /** The checkpoint mapping report, or null when training from scratch. */
    public LoadReport loadReport() {
        return loadReport;
    }

    /** Releases the network, the optimizer state and the folded prefix. */
    @Override
    public void close() {
        if (folded != null) {
            folded.close();
        }
        if (trainScript != null) {
            trainScript.close();
        }
        if (optimizer != null) {
            optimizer.close();
        }
        manager.close();
    }

    /** Builds a {@link FineTuner}; {@code checkpoint} null means torchvision's initialization (from scratch). */
    public static final class Builder {
        private Architecture arch = ResNetArch.RESNET18;
        private Checkpoint checkpoint;
        private KeyMapping mapping = KeyMapping.defaults();
        private boolean strict = true;
        private Integer headClasses;
        private Float dropout;
        private CrossEntropy loss = CrossEntropy.plain();
        private Double clipGradNorm;
        private FreezePolicy policy = FreezePolicy.trainAll();
        private OptimizerSettings optimizer = OptimizerSettings.sgd(0.01, 0.9);
        private Integer seed;
        private int threads;
        private boolean foldFrozenPrefix = true;
        private boolean releaseIntermediates = true;
        private FoldedPrefix.Layout foldLayout = FoldedPrefix.Layout.CHANNELS_LAST;
        private long contiguousBelowPixels = GuardedPrefix.SMALL_INPUT_PIXELS;
        private Precision prefixPrecision = Precision.FP32;
        private ChannelsLastTraining.Mode channelsLastTraining = ChannelsLastTraining.Mode.parse(
                System.getProperty(ChannelsLastTraining.PROPERTY));

        /** The architecture (default resnet18). */
        public Builder arch(Architecture arch) {
            this.arch = java.util.Objects.requireNonNull(arch);
            return this;
        }

        /** Pretrained weights to load (null: torchvision's initialization, training from scratch). */
        public Builder checkpoint(Checkpoint checkpoint) {
            this.checkpoint = checkpoint;
            return this;
        }

        /** How checkpoint keys map to the network's names (default: strip {@code module.} and {@code _orig_mod.}). */
        public Builder mapping(KeyMapping mapping) {
            this.mapping = mapping;
            return this;
        }

        /** Fail on missing, unexpected or mis-shaped keys (default true). */
        public Builder strict(boolean strict) {
            this.strict = strict;
            return this;
        }

        /** Replaces the head ({@code fc}, {@code classifier.1} …) with a new {@code Linear(features, classes)}. */
        public Builder headClasses(int classes) {
            this.headClasses = classes;
            return this;
        }

        /**
         * The training loss: PyTorch's {@code CrossEntropyLoss(weight=classWeights, label_smoothing=…)} (default
         * plain cross-entropy). Validation loss stays plain cross-entropy, comparable across recipes.
         */
        public Builder loss(CrossEntropy loss) {
            this.loss = java.util.Objects.requireNonNull(loss);
            return this;
        }

        /**
         * Clips the gradients' total L2 norm to {@code maxNorm} before every step, as PyTorch's
         * {@code clip_grad_norm_} (null, the default, for none).
         */
        public Builder clipGradNorm(Double maxNorm) {
            if (maxNorm != null && !(maxNorm > 0) || maxNorm != null && maxNorm.isInfinite()) {
                throw new ConfigException(ConfigException.Part.LOSS, "clip_grad_norm",
                        "must be > 0, found " + maxNorm);
            }
            this.clipGradNorm = maxNorm;
            return this;
        }

        /** Dropout before the head in training steps, in [0, 1); null (default) keeps the architecture's own. */
        public Builder dropout(Float p) {
            this.dropout = p;
            return this;
        }

        /** The freeze policy (default: everything trains). */
        public Builder policy(FreezePolicy policy) {
            this.policy = policy;
            return this;
        }

        /** The optimizer settings; it is built over the trainable parameters only (default SGD 0.01, momentum 0.9). */
        public Builder optimizer(OptimizerSettings optimizer) {
            this.optimizer = optimizer;
            return this;
        }

        /** Seeds libtorch's RNG before the model is initialized (new head, from-scratch weights, dropout). */
        public Builder seed(int seed) {
            this.seed = seed;
            return this;
        }

        /** libtorch intra-op threads (0: its default); only effective before the engine first starts. */
        public Builder threads(int threads) {
            this.threads = threads;
            return this;
        }

        /**
         * Free each intermediate of a training forward once consumed, unless autograd saved it (default true;
         * {@link StepScopes#releasing}): the peak memory of a step, not its values. Off only to compare against.
         */
        public Builder releaseIntermediates(boolean release) {
            this.releaseIntermediates = release;
            return this;
        }

        /** The arithmetic of the folded frozen prefix (default float32); bf16 for the ResNet family on bf16 CPUs. */
        public Builder prefixPrecision(Precision precision) {
            this.prefixPrecision = java.util.Objects.requireNonNull(precision);
            return this;
        }

        /**
         * Whether the autograd part of training steps runs channels-last: null (auto) for the ResNet family when the
         * whole network trains from the images and a batch has at least {@link GuardedPrefix#SMALL_INPUT_PIXELS}
         * pixels (N·H·W); true for every family and size; false never. Not called: false, unless the system property
         * {@code finetune.train.channels_last} says otherwise (float32 rounding coarser than NCHW's on one thread). Never through a BatchNorm in train mode (libtorch's channels-last BN
         * backward is percent-level off in float32; {@link ChannelsLastTraining}), so in practice with
         * {@code batchnorm: freeze-stats}. It is checked against NCHW on this host at the first step of each input
         * shape and every 500 steps, and falls back to NCHW where it differs ({@link #fastPathReports()}).
         */
        public Builder channelsLastTraining(Boolean on) {
            this.channelsLastTraining = on == null ? ChannelsLastTraining.Mode.AUTO
                    : on ? ChannelsLastTraining.Mode.ON : ChannelsLastTraining.Mode.OFF;
            return this;
        }


        /**
         * Fold frozen BatchNorm into the frozen convolutions and run that prefix channels-last for training steps and
         * feature caching (default true). The folded prefix is checked against the plain network on this host the
         * first time it sees each input shape ({@link GuardedPrefix}); where the engine computes it wrongly, it falls
         * back to NCHW or to no folding, and {@link #fastPathReports()} says so. Results equal the unfolded network
         * within {@code 1e-4 * max(1, max|output|)} (about 3e-6 measured).
         */
        public Builder foldFrozenPrefix(boolean fold) {
            this.foldFrozenPrefix = fold;
            return this;
        }

        /**
         * The memory layout the folded prefix asks for at every input size (default: channels-last, and NCHW below
         * {@link GuardedPrefix#SMALL_INPUT_PIXELS}); the guard still moves a stage to NCHW where this host computes it
         * wrongly. For comparing layouts (the benchmark) and for testing the guard on small inputs.
         */
        public Builder foldLayout(FoldedPrefix.Layout layout) {
            this.foldLayout = java.util.Objects.requireNonNull(layout);
            this.contiguousBelowPixels = 0;
            return this;
        }

        /** Loads, freezes, builds the head and the optimizer. */
        public FineTuner build() {
            return new FineTuner(this);
        }
    }
}
