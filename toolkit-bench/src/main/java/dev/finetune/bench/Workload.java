package dev.finetune.bench;

import dev.finetune.model.FoldedPrefix;
import dev.finetune.model.StepScopes;
import dev.finetune.ErrorKind;
import dev.finetune.FinetuneException;
import dev.finetune.policy.BnPolicy;
import dev.finetune.policy.FreezePolicy;
import java.util.Arrays;
import java.util.List;

/** What one benchmark iteration does. */
public enum Workload {
    /**
     * (a) Forward with no autograd graph, BN in eval mode: {@code FineTuner.predictLogits}; what
     * {@code predict --no-fold-bn} runs.
     */
    INFERENCE("inference", "inference, no graph, unfolded", "inference"),
    /**
     * (a) run residual unit by residual unit, each unit's intermediates freed before the next runs
     * ({@link StepScopes}): what plain inference would cost if it did not keep every activation until the batch ends.
     */
    INFERENCE_SCOPED("inference-scoped", "inference, intermediates freed per unit", "inference"),
    /**
     * (a) what {@code predict} and {@code evaluate} run by default: every stage before the head BN-folded and
     * channels-last behind the fast-path guard (checked against the plain network on the first batch), then the head;
     * no autograd.
     */
    INFERENCE_FOLDED("inference-folded", "inference (predict/evaluate default), BN-folded behind the guard",
            "inference"),
    /**
     * (a) as {@link #INFERENCE_FOLDED}, with the folded prefix run op by op through DJL
     * ({@code -Dfinetune.folded.scripted=false}) instead of as one TorchScript call: what the scripted path gains.
     */
    INFERENCE_FOLDED_OPS("inference-folded-ops", "inference, BN-folded + channels-last, op by op", "inference"),
    /**
     * (a) what {@code predict --precision bf16} runs: every stage before the head BN-folded in bfloat16 behind the
     * guard (checked against float32 on the first batch), then the head in float32; no autograd. Skipped, with a note,
     * on a CPU without bf16 instructions.
     */
    INFERENCE_BF16("inference-bf16", "inference, BN-folded bf16 behind the guard", "inference"),
    /** (b) Forward, backward and an SGD step with every parameter trainable, BN in train mode. */
    FULL_STEP("full-step", "full fine-tune step (all trainable)", "full-step"),
    /**
     * (b) as {@link #FULL_STEP} in bf16 mixed precision ({@code train.precision: bf16-mixed}: the forward and backward
     * as one TorchScript call with convolutions and the head in bfloat16, as {@code torch.autocast}), behind its guard
     * (checked against the float32 step on the first step). Skipped, with a note, on a CPU without bf16 instructions.
     */
    FULL_STEP_BF16_MIXED("full-step-bf16-mixed", "full step, bf16 mixed precision (train.precision: bf16-mixed)",
            "full-step-bf16-mixed"),
    /**
     * (b) as {@link #FULL_STEP}, with SGD's update run op by op with NDArrays ({@code -Dfinetune.optimizer.scripted=false})
     * instead of as one TorchScript call: what the scripted update gains.
     */
    FULL_STEP_SGD_OPS("full-step-sgd-ops", "full step, SGD update op by op", "full-step"),
    /**
     * (b') Every parameter trainable, every BN keeping its statistics ({@code batchnorm: freeze-stats}), with
     * {@code train.channels_last: auto} (opt-in): channels-last behind its guard from 2^17 pixels per batch
     * ({@code ChannelsLastTraining}).
     */
    FULL_STEP_FROZEN_BN("full-step-frozen-bn", "full step, BN statistics frozen, channels_last: auto",
            "full-step-frozen-bn"),
    /** As {@link #FULL_STEP_FROZEN_BN} with NCHW training steps (the default): what channels-last gains. */
    FULL_STEP_FROZEN_BN_NCHW("full-step-frozen-bn-nchw", "full step, BN statistics frozen, NCHW (default)",
            "full-step-frozen-bn"),
    /** (c) The linear probe: only {@code fc} trains, every BN keeps its statistics. */
    FROZEN_STEP("frozen-step", "frozen-backbone step (linear probe), unfolded", "frozen-step"),
    /** (d) {@code layer4} and {@code fc} train (layer4's BN in train mode), the rest is frozen. */
    LAST_STAGE_STEP("last-stage-step", "last-stage step (layer4+fc train), as training runs it", "last-stage-step"),
    /** (c) with the frozen backbone run BN-folded under no-grad, then a training step of the head alone. */
    FROZEN_STEP_FOLDED("frozen-step-folded", "frozen step, backbone BN-folded, no autograd", "frozen-step"),
    /** As {@link #FROZEN_STEP_FOLDED}, with the backbone's activations in channels-last layout. */
    FROZEN_STEP_FOLDED_CL(
            "frozen-step-folded-cl", "frozen step, BN-folded + channels-last, no autograd", "frozen-step"),
    /** As {@link #FROZEN_STEP_FOLDED}, with only the stem (conv1, max-pool) in channels-last layout. */
    FROZEN_STEP_FOLDED_CL_STEM(
            "frozen-step-folded-cl-stem", "frozen step, BN-folded + channels-last stem, no autograd", "frozen-step"),
    /** (c) with the frozen backbone run BN-folded in bf16 ({@code train.precision: bf16}), the head in float32. */
    FROZEN_STEP_BF16("frozen-step-bf16", "frozen step, backbone BN-folded in bf16, no autograd", "frozen-step"),
    /** torchvision's resnet18 traced to one TorchScript graph, run by DJL's PtSymbolBlock: inference. */
    TORCHSCRIPT_INFERENCE("ts-inference", "TorchScript graph on libtorch 2.7.1: inference", "inference"),
    /** The same TorchScript graph: forward, backward, SGD step, every parameter trainable. */
    TORCHSCRIPT_FULL_STEP("ts-full-step", "TorchScript graph on libtorch 2.7.1: full step", "full-step"),
    /** The data pipeline alone: decode, random resized crop, flip, normalize, batch ({@code BatchLoader}). */
    LOADER("loader", "data loader only (decode, crop, flip, normalize)", null);

    /** The workloads of our own model, in report order. */
    public static final List<Workload> OURS = List.of(INFERENCE, INFERENCE_SCOPED, INFERENCE_FOLDED, INFERENCE_FOLDED_OPS,
            INFERENCE_BF16,
            FULL_STEP, FULL_STEP_BF16_MIXED, FULL_STEP_SGD_OPS, FULL_STEP_FROZEN_BN, FULL_STEP_FROZEN_BN_NCHW, FROZEN_STEP, LAST_STAGE_STEP, FROZEN_STEP_FOLDED,
            FROZEN_STEP_FOLDED_CL,
            FROZEN_STEP_FOLDED_CL_STEM, FROZEN_STEP_BF16);

    /** The engine ceiling workloads (need a TorchScript archive traced by Python). */
    public static final List<Workload> TORCHSCRIPT = List.of(TORCHSCRIPT_INFERENCE, TORCHSCRIPT_FULL_STEP);

    private final String configName;
    private final String description;
    private final String torchCounterpart;

    Workload(String configName, String description, String torchCounterpart) {
        this.configName = configName;
        this.description = description;
        this.torchCounterpart = torchCounterpart;
    }

    /** The name used on the command line and in reports ({@code full-step}). */
    public String configName() {
        return configName;
    }

    public String description() {
        return description;
    }

    /** The workload of {@code scripts/bench/torch_bench.py} doing the same work, or null. */
    public String torchCounterpart() {
        return torchCounterpart;
    }

    /** The layout of the folded backbone of a folded workload, else null. */
    public FoldedPrefix.Layout foldedLayout() {
        return switch (this) {
            case FROZEN_STEP_FOLDED -> FoldedPrefix.Layout.CONTIGUOUS;
            case FROZEN_STEP_FOLDED_CL, LAST_STAGE_STEP, INFERENCE_FOLDED, INFERENCE_FOLDED_OPS, INFERENCE_BF16,
                    FROZEN_STEP_BF16 ->
                    FoldedPrefix.Layout.CHANNELS_LAST;
            case FROZEN_STEP_FOLDED_CL_STEM -> FoldedPrefix.Layout.CHANNELS_LAST_STEM;
            default -> null;
        };
    }

    /**
     * Whether the workload is what {@code evaluate} or {@code predict} run with folding (their default), which the
     * launcher starts under {@code FINETUNE_MALLOC=inference} when nothing else is asked
     * ({@link dev.finetune.engine.MallocPolicy#INFERENCE_VARIABLES}): the benchmark gives their processes the same.
     */
    public boolean foldedInference() {
        return this == INFERENCE_FOLDED || this == INFERENCE_FOLDED_OPS || this == INFERENCE_BF16;
    }

    /** Whether an iteration runs a backward pass and an optimizer step. */
    public boolean trains() {
        return this != INFERENCE && this != INFERENCE_SCOPED && this != INFERENCE_FOLDED
                && this != INFERENCE_FOLDED_OPS && this != INFERENCE_BF16
                && this != TORCHSCRIPT_INFERENCE && this != LOADER;
    }

    /** Whether the workload runs bf16 (the folded prefix, or the training step): it needs bf16 instructions. */
    public boolean bf16() {
        return precision() != dev.finetune.model.Precision.FP32;
    }

    /** Whether this workload needs bf16 instructions that this CPU lacks. */
    public boolean bf16Missing() {
        return bf16() && precision().whyUnavailable() != null;
    }

    /** The fine-tuner's {@code train.precision}. */
    public dev.finetune.model.Precision precision() {
        return switch (this) {
            case INFERENCE_BF16, FROZEN_STEP_BF16 -> dev.finetune.model.Precision.BF16;
            case FULL_STEP_BF16_MIXED -> dev.finetune.model.Precision.BF16_MIXED;
            default -> dev.finetune.model.Precision.FP32;
        };
    }

    /** The freeze policy of a {@code FineTuner}-based workload. */
    public FreezePolicy policy() {
        return switch (this) {
            case FROZEN_STEP, FROZEN_STEP_FOLDED, FROZEN_STEP_FOLDED_CL, FROZEN_STEP_FOLDED_CL_STEM, INFERENCE_FOLDED,
                    INFERENCE_FOLDED_OPS, INFERENCE_BF16, FROZEN_STEP_BF16 -> FreezePolicy.linearProbe();
            case LAST_STAGE_STEP -> new FreezePolicy(
                    false, -1, List.of(FreezePolicy.Rule.train("bench.last_stage", "layer4", "fc")), BnPolicy.AUTO);
            case FULL_STEP_FROZEN_BN, FULL_STEP_FROZEN_BN_NCHW -> new FreezePolicy(true, -1, List.of(),
                    BnPolicy.FREEZE_STATS);
            default -> FreezePolicy.trainAll();
        };
    }

    /** Parses a config name. */
    public static Workload parse(String name) {
        for (Workload w : values()) {
            if (w.configName.equals(name)) {
                return w;
            }
        }
        throw new FinetuneException(
                ErrorKind.USAGE,
                "unknown workload '" + name + "'; known: "
                        + Arrays.stream(values()).map(Workload::configName).toList());
    }
}
