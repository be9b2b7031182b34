package dev.finetune.config;

import com.fasterxml.jackson.annotation.JsonFormat;
import dev.finetune.ConfigException;
import java.util.List;

/**
 * {@code train:} — the loop: epochs, batch, seed, schedule, gradual unfreezing, early stopping, best model.
 *
 * @param epochs epochs to run (default 10)
 * @param batchSize batch size (default 32)
 * @param seed seed for weights of a new head, shuffling, augmentation (default 0)
 * @param threads libtorch intra-op threads (default: all cores)
 * @param schedule learning-rate schedule
 * @param unfreeze gradual unfreezing steps
 * @param earlyStopping stop when a metric stops improving
 * @param bestMetric the metric that picks the {@code best} checkpoint (default val_top1)
 * @param featureCache train on cached outputs of a deterministic frozen prefix (default true; see the docs)
 * @param maxStepsPerEpoch cap on steps per epoch (quick runs and tests; default none)
 * @param foldFrozenBn fold frozen BatchNorm into the frozen convolutions for training steps (default true)
 * @param labelSmoothing PyTorch's {@code CrossEntropyLoss(label_smoothing=…)} for the training loss (default 0)
 * @param classWeights the loss's class weights: {@code auto} (scikit-learn's "balanced": n / (classes × n_c) from the
 *     training data's class counts) or one number per class; absent for none
 * @param clipGradNorm clip the gradients' total L2 norm to this before each step ({@code clip_grad_norm_}); absent
 *     for none
 * @param accumulateSteps batches per optimizer step (gradient accumulation; default 1)
 * @param mixup batch-level Mixup / CutMix with mixed labels (timm's semantics); absent for none
 * @param ema an exponential moving average of the weights (timm's {@code ModelEmaV2}), validated and saved beside the
 *     model; absent for none
 * @param report write {@code report.html} into the run folder when training ends (default true)
 * @param updateBnBatches before each validation, recompute the running statistics of the BatchNorm layers that
 *     train over this many training batches (PyTorch's {@code torch.optim.swa_utils.update_bn}); 0 (default) off
 * @param featureStore a folder written by {@code finetune features}: the frozen prefix's outputs are read from it
 *     instead of computed (relative to the config file); absent for none
 * @param channelsLast training steps channels-last: {@code false} (default), {@code auto} or {@code true}
 * @param recoveryInterval also write the resumable {@code last.safetensors} every this many optimizer steps into an
 *     epoch (timm's {@code --recovery-interval}); 0 (default) only at each epoch's end and on Ctrl-C / SIGTERM
 * @param valEvery validate after every this many epochs and after the last (Lightning's
 *     {@code check_val_every_n_epoch}; default 1)
 * @param precision the arithmetic: {@code fp32} (default), {@code bf16} (the frozen, BN-folded prefix in bfloat16;
 *     everything that trains stays float32) or {@code bf16-mixed} (that, and training steps in bfloat16 mixed
 *     precision as {@code torch.autocast}); ResNet family, CPUs with bf16 instructions
 */
public record TrainConfig(
        Integer epochs,
        Integer batchSize,
        Integer seed,
        Integer threads,
        ScheduleConfig schedule,
        List<UnfreezeConfig> unfreeze,
        EarlyStoppingConfig earlyStopping,
        String bestMetric,
        Boolean featureCache,
        Integer maxStepsPerEpoch,
        Boolean foldFrozenBn,
        Double labelSmoothing,
        Object classWeights,
        Double clipGradNorm,
        Integer accumulateSteps,
        MixupConfig mixup,
        EmaConfig ema,
        Boolean report,
        Integer updateBnBatches,
        String featureStore,
        String precision,
        String channelsLast,
        Integer recoveryInterval,
        Integer valEvery) {

    /** Most intra-op threads accepted: more than any CPU this runs on has, few enough to start at once. */
    public static final int MAX_THREADS = 256;

    public TrainConfig {
        epochs = epochs == null ? 10 : epochs;
        batchSize = batchSize == null ? 32 : batchSize;
        seed = seed == null ? 0 : seed;
        threads = threads == null ? 0 : threads;
        schedule = schedule == null ? new ScheduleConfig(null, null, null, null, null, null, null) : schedule;
        unfreeze = unfreeze == null ? List.of() : List.copyOf(unfreeze);
        bestMetric = bestMetric == null ? "val_top1" : bestMetric;
        featureCache = featureCache == null ? Boolean.TRUE : featureCache;
        report = report == null ? Boolean.TRUE : report;
        foldFrozenBn = foldFrozenBn == null ? Boolean.TRUE : foldFrozenBn;
        try {
            precision = dev.finetune.model.Precision.parse(precision).configName();
        } catch (IllegalArgumentException e) {
            throw new ConfigException("train.precision", e.getMessage());
        }
        channelsLast = channelsLast == null ? "false" : channelsLast.trim().toLowerCase(java.util.Locale.ROOT);
        if (!List.of("auto", "true", "false").contains(channelsLast)) {
            throw new ConfigException("train.channels_last", "must be auto, true or false, found " + channelsLast);
        }
        if (precision.equals("bf16") && !foldFrozenBn) {
            throw new ConfigException("train.precision", "bf16 runs the BN-folded frozen prefix, and"
                    + " train.fold_frozen_bn is false; remove one of the two");
        }
        labelSmoothing = labelSmoothing == null ? 0.0 : labelSmoothing;
        if (!(labelSmoothing >= 0 && labelSmoothing < 1)) {
            throw new ConfigException("train.label_smoothing", "must be in [0, 1), found " + labelSmoothing);
        }
        if (classWeights != null && !"auto".equals(classWeights) && !(classWeights instanceof List<?> l
                && !l.isEmpty() && l.stream().allMatch(x -> x instanceof Number n && n.doubleValue() > 0
                        && Double.isFinite(n.doubleValue())))) {
            throw new ConfigException("train.class_weights", "must be 'auto' or a list of positive numbers, one per"
                    + " class, found " + classWeights);
        }
        accumulateSteps = accumulateSteps == null ? 1 : accumulateSteps;
        updateBnBatches = updateBnBatches == null ? 0 : updateBnBatches;
        recoveryInterval = recoveryInterval == null ? 0 : recoveryInterval;
        valEvery = valEvery == null ? 1 : valEvery;
        if (valEvery < 1) {
            throw new ConfigException("train.val_every", "must be >= 1 (epochs between validations), found " + valEvery);
        }
        if (recoveryInterval < 0) {
            throw new ConfigException("train.recovery_interval", "must be >= 0 (0: off), found " + recoveryInterval);
        }
        if (updateBnBatches < 0) {
            throw new ConfigException("train.update_bn_batches", "must be >= 0 (0: off), found " + updateBnBatches);
        }
        if (accumulateSteps < 1) {
            throw new ConfigException("train.accumulate_steps", "must be >= 1, found " + accumulateSteps);
        }
        if (mixup != null && classWeights != null) {
            throw new ConfigException("train.class_weights", "cannot be combined with train.mixup: mixed targets use"
                    + " timm's soft-target cross-entropy, which has no class weights; use data.sampler: balanced for"
                    + " imbalance instead, or drop one of the two");
        }
        if (clipGradNorm != null && !(clipGradNorm > 0 && Double.isFinite(clipGradNorm))) {
            throw new ConfigException("train.clip_grad_norm", "must be > 0, found " + clipGradNorm);
        }
        if (epochs < 1) {
            throw new ConfigException("train.epochs", "must be >= 1, found " + epochs);
        }
        if (batchSize < 1) {
            throw new ConfigException("train.batch_size", "must be >= 1, found " + batchSize);
        }
        if (threads < 0 || threads > MAX_THREADS) {
            throw new ConfigException("train.threads", "must be 0 (all cores) to " + MAX_THREADS + ", found " + threads
                    + (threads > MAX_THREADS ? "; this machine has " + Runtime.getRuntime().availableProcessors()
                            + " cores" : ""));
        }
        if (featureStore != null && featureStore.isBlank()) {
            throw new ConfigException("train.feature_store", "is empty: give the folder finetune features wrote, or"
                    + " drop the key");
        }
        if (featureStore != null && !featureCache) {
            throw new ConfigException("train.feature_store", "needs train.feature_cache: true (the store is read as"
                    + " the feature cache); drop one of the two");
        }
        if (maxStepsPerEpoch != null && maxStepsPerEpoch < 1) {
            throw new ConfigException("train.max_steps_per_epoch", "must be >= 1, found " + maxStepsPerEpoch);
        }
        for (int i = 0; i < unfreeze.size(); i++) {
            UnfreezeConfig u = unfreeze.get(i);
            String where = "train.unfreeze[" + i + "]";
            if (u.atEpoch() == null || u.atEpoch() < 1) {
                throw new ConfigException(where + ".at_epoch", "required, >= 1 (epochs count from 1)");
            }
            if (u.atEpoch() > epochs) {
                throw new ConfigException(where + ".at_epoch", "is " + u.atEpoch() + " but train.epochs is " + epochs
                        + ": this step would never run");
            }
            if (u.match() == null || u.match().isEmpty()) {
                throw new ConfigException(where + ".match", "required: the names to unfreeze, e.g. \"layer4\"");
            }
            if (u.lrMult() != null && !(u.lrMult() > 0)) {
                throw new ConfigException(where + ".lr_mult", "must be > 0, found " + u.lrMult());
            }
        }
    }

    /** Defaults throughout. */
    public static TrainConfig defaults() {
        return new TrainConfig(null, null, null, null, null, null, null, null, null, null, null, null, null, null, null,
                null, null, null, null, null, null, null, null, null);
    }

    /** {@link #channelsLast()} for {@code FineTuner.Builder.channelsLastTraining}: null for auto. */
    public Boolean channelsLastTraining() {
        return channelsLast.equals("auto") ? null : Boolean.valueOf(channelsLast);
    }

    /** {@link #precision()} as the enum. */
    public dev.finetune.model.Precision prefixPrecision() {
        return dev.finetune.model.Precision.parse(precision);
    }

    /**
     * {@code mixup: {mixup_alpha: 0.8, cutmix_alpha: 1.0}}: timm's {@code Mixup} in batch mode.
     *
     * @param mixupAlpha Beta(α, α) of Mixup's λ; 0 turns Mixup off (default 0.8)
     * @param cutmixAlpha Beta(α, α) of CutMix's λ; 0 turns CutMix off (default 1.0)
     * @param prob probability that a batch is mixed (default 1.0)
     * @param switchProb probability of CutMix rather than Mixup when both are on (default 0.5)
     */
    public record MixupConfig(Double mixupAlpha, Double cutmixAlpha, Double prob, Double switchProb) {
        public MixupConfig {
            mixupAlpha = mixupAlpha == null ? 0.8 : mixupAlpha;
            cutmixAlpha = cutmixAlpha == null ? 1.0 : cutmixAlpha;
            prob = prob == null ? 1.0 : prob;
            switchProb = switchProb == null ? 0.5 : switchProb;
            if (!(mixupAlpha >= 0) || Double.isInfinite(mixupAlpha)) {
                throw new ConfigException("train.mixup.mixup_alpha", "must be >= 0 (0: no Mixup), found " + mixupAlpha);
            }
            if (!(cutmixAlpha >= 0) || Double.isInfinite(cutmixAlpha)) {
                throw new ConfigException("train.mixup.cutmix_alpha", "must be >= 0 (0: no CutMix), found "
                        + cutmixAlpha);
            }
            if (mixupAlpha == 0 && cutmixAlpha == 0) {
                throw new ConfigException("train.mixup", "mixup_alpha and cutmix_alpha are both 0, which mixes"
                        + " nothing; remove train.mixup, or set one of them > 0 (timm's recipe: 0.8 and 1.0)");
            }
            if (!(prob >= 0 && prob <= 1)) {
                throw new ConfigException("train.mixup.prob", "must be in [0, 1], found " + prob);
            }
            if (!(switchProb >= 0 && switchProb <= 1)) {
                throw new ConfigException("train.mixup.switch_prob", "must be in [0, 1], found " + switchProb);
            }
        }
    }

    /**
     * {@code ema: {decay: 0.9998}}: after every optimizer step, {@code ema = decay·ema + (1 − decay)·w} over the
     * weights and running statistics that change (timm's {@code ModelEmaV2}).
     *
     * @param decay in (0, 1) (default 0.9998, timm's train.py)
     */
    public record EmaConfig(Double decay) {
        public EmaConfig {
            decay = decay == null ? 0.9998 : decay;
            if (!(decay > 0 && decay < 1)) {
                throw new ConfigException("train.ema.decay", "must be in (0, 1), found " + decay);
            }
        }
    }

    /**
     * {@code schedule: {name: cosine, warmup_epochs: 1}}.
     *
     * @param name constant (default), step, cosine, onecycle
     * @param warmupEpochs linear warm-up from 0 over this many epochs (fractions allowed)
     * @param stepSize step: epochs between decays
     * @param gamma step: decay factor (default 0.1)
     * @param minLr cosine: floor (default 0)
     * @param maxLrMult onecycle: peak as a multiple of optimizer.lr (default 1)
     * @param pctStart onecycle: fraction of steps rising (default 0.3)
     */
    public record ScheduleConfig(
            String name,
            Double warmupEpochs,
            Integer stepSize,
            Double gamma,
            Double minLr,
            Double maxLrMult,
            Double pctStart) {
        public ScheduleConfig {
            name = name == null ? "constant" : name;
            if (!List.of("constant", "step", "cosine", "onecycle").contains(name)) {
                throw new ConfigException("train.schedule.name", "unknown schedule '" + name
                        + "'; choose constant, step, cosine or onecycle");
            }
            if (warmupEpochs != null && !(warmupEpochs >= 0 && warmupEpochs < Double.POSITIVE_INFINITY)) {
                throw new ConfigException("train.schedule.warmup_epochs", "must be a number >= 0, found "
                        + warmupEpochs);
            }
            if (gamma != null && !(gamma > 0 && gamma <= 1)) {
                throw new ConfigException("train.schedule.gamma", "must be in (0, 1] (the factor the lr is multiplied"
                        + " by at each step), found " + gamma);
            }
            if (minLr != null && !(minLr >= 0 && minLr < Double.POSITIVE_INFINITY)) {
                throw new ConfigException("train.schedule.min_lr", "must be a number >= 0, found " + minLr);
            }
            if (maxLrMult != null && !(maxLrMult > 0 && maxLrMult < Double.POSITIVE_INFINITY)) {
                throw new ConfigException("train.schedule.max_lr_mult", "must be a number > 0, found " + maxLrMult);
            }
            if ("step".equals(name) && (stepSize == null || stepSize < 1)) {
                throw new ConfigException("train.schedule.step_size", "required for the step schedule, >= 1");
            }
            if (pctStart != null && !(pctStart > 0 && pctStart < 1)) {
                throw new ConfigException("train.schedule.pct_start", "must be in (0, 1), found " + pctStart);
            }
        }
    }

    /**
     * {@code {at_epoch: 3, match: "layer4.*", lr_mult: 0.1}}: from that epoch on these names train, with their own
     * learning-rate multiplier.
     *
     * @param atEpoch first epoch (1-based) in which they train
     * @param match patterns
     * @param lrMult learning-rate multiplier for them (default 1)
     */
    public record UnfreezeConfig(
            Integer atEpoch,
            @JsonFormat(with = JsonFormat.Feature.ACCEPT_SINGLE_VALUE_AS_ARRAY) List<String> match,
            Double lrMult) {}

    /**
     * {@code early_stopping: {metric: val_loss, patience: 3, min_delta: 0.001}}.
     *
     * @param metric metric name
     * @param patience epochs without improvement before stopping
     * @param minDelta smallest change that counts as improvement
     */
    public record EarlyStoppingConfig(String metric, Integer patience, Double minDelta) {
        public EarlyStoppingConfig {
            metric = metric == null ? "val_loss" : metric;
            patience = patience == null ? 3 : patience;
            minDelta = minDelta == null ? 0.0 : minDelta;
            if (patience < 1) {
                throw new ConfigException("train.early_stopping.patience", "must be >= 1, found " + patience);
            }
            if (!(minDelta >= 0 && minDelta < Double.POSITIVE_INFINITY)) {
                throw new ConfigException("train.early_stopping.min_delta", "must be a number >= 0, found "
                        + minDelta);
            }
        }
    }
}
