package dev.finetune.inspect;

import java.util.List;
import java.util.Locale;

/**
 * What {@code finetune inspect} shows: every tensor with its fate, totals, and the backward frontier.
 *
 * @param experiment the config name
 * @param policy the policy in one line
 * @param rows one per tensor, in state_dict order
 * @param trainableParams elements that train
 * @param frozenParams elements frozen (parameters only; buffers listed separately)
 * @param bufferElements elements in BN running statistics
 * @param batchNorms each BN layer's mode and why
 * @param frontier the backward frontier
 * @param load the checkpoint mapping summary, or null (from scratch)
 * @param arch the architecture ({@code mobilenet_v3_large})
 * @param stages its stages in forward order, ending with {@code head}
 * @param layerNorms the LayerNorm modules (no running statistics: the batchnorm setting does not apply to them)
 * @param fastPath how the frozen prefix will run (BN-folded, float32 or bf16), or null when nothing is folded
 * @param trainingSteps the layout of training steps when {@code train.channels_last} asks for channels-last, or null
 */
public record InspectReport(
        String experiment,
        String policy,
        List<Row> rows,
        long trainableParams,
        long frozenParams,
        long bufferElements,
        List<BnRow> batchNorms,
        Frontier frontier,
        String load,
        String arch,
        List<String> stages,
        List<String> layerNorms,
        String fastPath,
        String trainingSteps) {

    /** Without a fast-path line. */
    public InspectReport(String experiment, String policy, List<Row> rows, long trainableParams, long frozenParams,
            long bufferElements, List<BnRow> batchNorms, Frontier frontier, String load, String arch,
            List<String> stages, List<String> layerNorms) {
        this(experiment, policy, rows, trainableParams, frozenParams, bufferElements, batchNorms, frontier, load, arch,
                stages, layerNorms, null, null);
    }

    /** The same report saying how the frozen prefix will run. */
    public InspectReport withFastPath(String path) {
        return new InspectReport(experiment, policy, rows, trainableParams, frozenParams, bufferElements, batchNorms,
                frontier, load, arch, stages, layerNorms, path, trainingSteps);
    }

    /** The same report saying how training steps will run (null: nothing to say, the default NCHW). */
    public InspectReport withTrainingSteps(String steps) {
        return new InspectReport(experiment, policy, rows, trainableParams, frozenParams, bufferElements, batchNorms,
                frontier, load, arch, stages, layerNorms, fastPath, steps);
    }

    /**
     * One tensor.
     *
     * @param name torchvision name
     * @param shape shape
     * @param count elements
     * @param kind param or buffer
     * @param trainable whether it trains
     * @param decidedBy the rule (or default) that decided
     * @param bnMode the owning BN layer's mode, or null
     * @param lr effective learning rate at the start, or null when frozen
     * @param weightDecay effective weight decay, or null when frozen
     * @param inOptimizer whether the optimizer holds it
     * @param optimizerGroup the optimizer group that set its lr / weight decay, or null when frozen
     */
    public record Row(
            String name,
            List<Long> shape,
            long count,
            String kind,
            boolean trainable,
            String decidedBy,
            String bnMode,
            Double lr,
            Double weightDecay,
            boolean inOptimizer,
            String optimizerGroup) {}

    /**
     * A BatchNorm layer.
     *
     * @param module name
     * @param mode TRAIN or FROZEN_STATS
     * @param why the policy clause
     */
    public record BnRow(String module, String mode, String why) {}

    /**
     * The backward frontier: stages before the first trainable parameter need no gradient, so autograd records
     * nothing there (no graph, no saved activations).
     *
     * @param firstTrainableStage the stage holding the first trainable parameter
     * @param noGradStages stages that run without autograd
     * @param savedActivationBytesPerImage estimated activation bytes autograd would have kept for those stages, per
     *     image at the inspected input size
     * @param totalActivationBytesPerImage the same estimate for the whole network
     * @param imageSize the input size the estimate is for
     * @param deterministicPrefix whether the no-grad prefix is a fixed function (its BN layers keep statistics), so
     *     its output can be cached
     * @param randomAugmentation whether training augments at random, so the prefix's input changes every epoch and
     *     its output is not cached although the prefix is a fixed function
     */
    public record Frontier(
            String firstTrainableStage,
            List<String> noGradStages,
            long savedActivationBytesPerImage,
            long totalActivationBytesPerImage,
            int imageSize,
            boolean deterministicPrefix,
            boolean randomAugmentation) {

        /** Whether training caches the prefix's output (the feature cache). */
        public boolean cacheable() {
            return deterministicPrefix && !randomAugmentation && !noGradStages.isEmpty();
        }
    }

    /** Percentage of parameters that train. */
    public double trainablePercent() {
        long all = trainableParams + frozenParams;
        return all == 0 ? 0 : 100.0 * trainableParams / all;
    }

    /** The table and totals as text. */
    public String toText() {
        StringBuilder b = new StringBuilder();
        String fmt = "%-36s %-18s %10s  %-9s %-12s %-10s %-9s %-6s  %s%n";
        b.append(String.format(Locale.ROOT, fmt, "name", "shape", "count", "trainable", "bn", "lr", "wd", "optim",
                "decided by (freeze; optimizer group)"));
        for (Row r : rows) {
            b.append(String.format(Locale.ROOT, fmt,
                    r.name(),
                    r.shape().toString(),
                    String.format(Locale.ROOT, "%,d", r.count()),
                    r.kind().equals("buffer") ? "buffer" : (r.trainable() ? "yes" : "no"),
                    r.bnMode() == null ? "" : r.bnMode().toLowerCase(Locale.ROOT).replace('_', '-'),
                    r.lr() == null ? "-" : String.format(Locale.ROOT, "%.3g", r.lr()),
                    r.weightDecay() == null ? "-" : String.format(Locale.ROOT, "%.3g", r.weightDecay()),
                    r.inOptimizer() ? "yes" : "no",
                    r.decidedBy() + (r.optimizerGroup() == null || r.optimizerGroup().equals("base") ? ""
                            : "; " + r.optimizerGroup())));
        }
        b.append(System.lineSeparator());
        b.append(String.format(Locale.ROOT, "experiment: %s%npolicy: %s%n", experiment, policy));
        b.append(String.format(Locale.ROOT,
                "trainable parameters: %,d (%.2f%%)%nfrozen parameters:    %,d%nBN running statistics: %,d elements%n",
                trainableParams, trainablePercent(), frozenParams, bufferElements));
        long frozenStats = batchNorms.stream().filter(x -> x.mode().equals("FROZEN_STATS")).count();
        b.append(String.format(Locale.ROOT, "BatchNorm layers: %d, %d with frozen statistics, %d updating%n",
                batchNorms.size(), frozenStats, batchNorms.size() - frozenStats));
        if (!layerNorms.isEmpty()) {
            b.append(String.format(Locale.ROOT, "LayerNorm layers: %d; they keep no running statistics, so the"
                    + " batchnorm setting does not apply to them (their weight and bias follow the rules)%n",
                    layerNorms.size()));
        }
        b.append(String.format(Locale.ROOT, "architecture: %s; stages: %s%n", arch, String.join(", ", stages)));
        b.append(String.format(Locale.ROOT,
                "backward frontier: %s — %s run without autograd (no graph); saves ~%.1f MiB of %.1f MiB activations"
                        + " per image at %dx%d%s%n",
                frontier.firstTrainableStage(),
                frontier.noGradStages().isEmpty() ? "no stage" : String.join(", ", frontier.noGradStages()),
                frontier.savedActivationBytesPerImage() / 1048576.0,
                frontier.totalActivationBytesPerImage() / 1048576.0,
                frontier.imageSize(), frontier.imageSize(),
                frontier.cacheable() ? "; the prefix is a fixed function (cacheable)"
                        : frontier.deterministicPrefix() && !frontier.noGradStages().isEmpty()
                                ? "; the prefix is a fixed function, not cached: random augmentation (data.augment or"
                                        + " train.mixup) changes its input every epoch" : ""));
        if (fastPath != null) {
            b.append("frozen prefix: ").append(fastPath).append(System.lineSeparator());
        }
        if (trainingSteps != null) {
            b.append("training steps: ").append(trainingSteps).append(System.lineSeparator());
        }
        if (load != null) {
            b.append("checkpoint: ").append(load);
        }
        return b.toString();
    }
}
