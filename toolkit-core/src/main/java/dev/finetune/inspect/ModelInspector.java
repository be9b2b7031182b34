package dev.finetune.inspect;

import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Block;
import ai.djl.nn.Parameter;
import dev.finetune.model.BatchNorm2d;
import dev.finetune.model.BnMode;
import dev.finetune.model.Conv2d;
import dev.finetune.model.Network;
import dev.finetune.optim.AddedGroup;
import dev.finetune.optim.GroupedOptimizer;
import dev.finetune.optim.OptimizerSettings;
import dev.finetune.optim.ParamSlot;
import dev.finetune.policy.FreezePlan;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Builds an {@link InspectReport} from a model with a plan applied and the optimizer settings. */
public final class ModelInspector {
    private ModelInspector() {}

    /**
     * Inspects {@code model} under {@code plan}. Activation estimates are for one image of {@code imageSize}²: the
     * inputs of every conv and BN plus the ReLU outputs, in fp32 — what autograd keeps for backward.
     */
    public static InspectReport inspect(
            String experiment, Network model, FreezePlan plan, OptimizerSettings optimizer, int imageSize, String load) {
        return inspect(experiment, model, plan, optimizer, List.of(), imageSize, load);
    }

    /** {@link #inspect} with the optimizer groups added by gradual unfreezing so far. */
    public static InspectReport inspect(String experiment, Network model, FreezePlan plan, OptimizerSettings optimizer,
            List<AddedGroup> added, int imageSize, String load) {
        return inspect(experiment, model, plan, optimizer, added, imageSize, false, load);
    }

    /** {@link #inspect} for training with or without random augmentation (which rules out the feature cache). */
    public static InspectReport inspect(String experiment, Network model, FreezePlan plan, OptimizerSettings optimizer,
            List<AddedGroup> added, int imageSize, boolean randomAugmentation, String load) {
        Map<String, Parameter> tensors = model.namedTensors();
        Map<String, ParamSlot> slots = new HashMap<>();
        for (ParamSlot s : GroupedOptimizer.slotsFor(optimizer, tensors, plan, added)) {
            slots.put(s.name(), s);
        }
        List<InspectReport.Row> rows = new ArrayList<>();
        long buffers = 0;
        for (FreezePlan.Decision d : plan.decisions()) {
            ParamSlot slot = slots.get(d.name());
            String bn = d.tensor().bnModule();
            BnMode mode = bn == null ? null : plan.bnModes().get(bn);
            if (d.tensor().buffer()) {
                buffers += d.tensor().count();
            }
            rows.add(new InspectReport.Row(
                    d.name(),
                    Arrays.stream(d.tensor().shape()).boxed().toList(),
                    d.tensor().count(),
                    d.tensor().buffer() ? "buffer" : "param",
                    d.trainable(),
                    d.tensor().buffer() ? (mode == BnMode.FROZEN_STATS ? "frozen statistics" : "updated in training")
                            : d.decidedBy(),
                    mode == null ? null : mode.name(),
                    slot == null ? null : optimizer.lr() * slot.lrMult(),
                    slot == null ? null : slot.weightDecay(),
                    slot != null,
                    slot == null ? null : slot.group()));
        }
        List<InspectReport.BnRow> bns = new ArrayList<>();
        plan.bnModes().forEach((name, mode) -> bns.add(new InspectReport.BnRow(name, mode.name(),
                plan.bnReasons().get(name))));
        return new InspectReport(
                experiment,
                plan.policy().describe(),
                rows,
                plan.trainableParameterCount(),
                plan.frozenParameterCount(),
                buffers,
                bns,
                frontier(model, plan, imageSize, randomAugmentation),
                load);
    }

    /** The first stage with a trainable parameter, and what running the stages before it without autograd saves. */
    public static InspectReport.Frontier frontier(Network model, FreezePlan plan, int imageSize) {
        return frontier(model, plan, imageSize, false);
    }

    /** {@link #frontier(Network, FreezePlan, int)} for training with or without random augmentation. */
    public static InspectReport.Frontier frontier(Network model, FreezePlan plan, int imageSize,
            boolean randomAugmentation) {
        List<String> stages = model.stageNames();
        int first = stages.size() - 1;
        for (String name : plan.trainableNames()) {
            first = Math.min(first, model.stageIndexOf(name));
        }
        Map<String, Long> perStage = activationBytesPerStage(model, imageSize);
        long saved = 0;
        long total = 0;
        boolean deterministic = true;
        for (int s = 0; s < stages.size(); s++) {
            long bytes = perStage.getOrDefault(stages.get(s), 0L);
            total += bytes;
            if (s < first) {
                saved += bytes;
            }
        }
        for (Network.NamedBatchNorm n : model.batchNorms()) {
            if (first > model.stageIndexOf(n.name()) && n.bn().mode() != BnMode.FROZEN_STATS) {
                deterministic = false;
            }
        }
        return new InspectReport.Frontier(
                stages.get(first), List.copyOf(stages.subList(0, first)), saved, total, imageSize, deterministic,
                randomAugmentation);
    }

    /**
     * Estimated bytes autograd saves per stage for one image: conv and BN inputs, and one ReLU output per BN
     * (the stem's and each block's first BN feed a ReLU; the last BN's ReLU follows the residual add, same size).
     */
    static Map<String, Long> activationBytesPerStage(Network model, int imageSize) {
        double scale = (imageSize / 224.0) * (imageSize / 224.0);
        Map<String, Long> out = new LinkedHashMap<>();
        for (Map.Entry<String, Block> e : model.namedModules().entrySet()) {
            Block b = e.getValue();
            if (!(b instanceof Conv2d) && !(b instanceof BatchNorm2d)) {
                continue;
            }
            Shape[] in = b.getInputShapes();
            if (in == null || in.length == 0) {
                continue;
            }
            long numel = in[0].size() / Math.max(1, in[0].get(0));
            long elements = b instanceof BatchNorm2d && !e.getKey().contains("downsample") ? 2 * numel : numel;
            out.merge(model.stageOf(e.getKey()), Math.round(elements * 4 * scale), Long::sum);
        }
        out.merge("head", (long) model.featureDim() * 4, Long::sum);
        return out;
    }
}
