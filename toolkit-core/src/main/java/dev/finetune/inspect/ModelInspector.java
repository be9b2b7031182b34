package dev.finetune.inspect;

import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Block;
import ai.djl.nn.Parameter;
import dev.finetune.model.Act;
import dev.finetune.model.BatchNorm2d;
import dev.finetune.model.BnMode;
import dev.finetune.model.Conv2d;
import dev.finetune.model.LayerNorm;
import dev.finetune.model.Linear;
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
                load,
                model.arch().configName(),
                model.stageNames(),
                model.namedModules().entrySet().stream().filter(e -> e.getValue() instanceof LayerNorm)
                        .map(Map.Entry::getKey).toList());
    }

    /** {@code features.3.1} → {@code features.3.2}; a name not ending in an index has none. */
    private static String nextSibling(String name) {
        int dot = name.lastIndexOf('.');
        String last = name.substring(dot + 1);
        if (last.isEmpty() || !last.chars().allMatch(Character::isDigit)) {
            return "";
        }
        return name.substring(0, dot + 1) + (Integer.parseInt(last) + 1);
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
     * Estimated bytes autograd saves per stage for one image: the inputs of convs, BN and LayerNorm layers, Linear
     * layers inside stages and activation modules ({@code Act}); a BN not followed by an activation module also
     * counts its output once, for the activation its block applies inline (ResNet's ReLUs, the residual add's).
     */
    static Map<String, Long> activationBytesPerStage(Network model, int imageSize) {
        double scale = (imageSize / 224.0) * (imageSize / 224.0);
        Map<String, Long> out = new LinkedHashMap<>();
        Map<String, Block> modules = model.namedModules();
        for (Map.Entry<String, Block> e : modules.entrySet()) {
            Block b = e.getValue();
            boolean counted = b instanceof Conv2d || b instanceof BatchNorm2d || b instanceof LayerNorm
                    || b instanceof Act || (b instanceof Linear && !e.getKey().equals(model.headName()));
            if (!counted || model.stageOf(e.getKey()).equals("head")) {
                continue;
            }
            Shape[] in = b.getInputShapes();
            if (in == null || in.length == 0) {
                continue;
            }
            long numel = in[0].size() / Math.max(1, in[0].get(0));
            long elements = b instanceof BatchNorm2d && !e.getKey().contains("downsample")
                    && !(modules.get(nextSibling(e.getKey())) instanceof Act) ? 2 * numel : numel;
            out.merge(model.stageOf(e.getKey()), Math.round(elements * 4 * scale), Long::sum);
        }
        out.merge("head", (long) model.featureDim() * 4, Long::sum);
        return out;
    }
}
