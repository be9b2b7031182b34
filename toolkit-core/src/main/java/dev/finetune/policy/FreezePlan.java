package dev.finetune.policy;

import ai.djl.nn.Parameter;
import dev.finetune.model.BatchNorm2d;
import dev.finetune.model.BnMode;
import dev.finetune.model.Network;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * A policy's decision for every tensor of one model, and each BatchNorm layer's mode. {@link #apply} makes it so:
 * {@code requires_grad} off for frozen parameters (libtorch then records no graph through them) and the BN modes set.
 *
 * @param policy the policy that decided
 * @param decisions one per tensor, in state_dict order
 * @param bnModes BN module name → mode
 * @param bnReasons BN module name → why
 */
public record FreezePlan(
        FreezePolicy policy, List<Decision> decisions, Map<String, BnMode> bnModes, Map<String, String> bnReasons) {

    /** One tensor's fate and the rule that decided it. */
    public record Decision(TensorInfo tensor, boolean trainable, String decidedBy) {
        public String name() {
            return tensor.name();
        }
    }

    /** The tensor list of a model, as the policy sees it. */
    public static List<TensorInfo> describe(Network model) {
        List<TensorInfo> out = new ArrayList<>();
        Map<String, ai.djl.nn.Block> modules = model.namedModules();
        for (Map.Entry<String, Parameter> e : model.namedTensors().entrySet()) {
            String name = e.getKey();
            boolean buffer = name.endsWith(".running_mean") || name.endsWith(".running_var");
            String bn = null;
            int dot = name.lastIndexOf('.');
            String module = dot < 0 ? "" : name.substring(0, dot);
            if (modules.get(module) instanceof BatchNorm2d) {
                bn = module;
            }
            out.add(new TensorInfo(name, e.getValue().getShape().getShape(), buffer, bn, model.stageIndexOf(name),
                    model.stageNames()));
        }
        return out;
    }

    /** Plans {@code policy} for {@code model} and applies it. */
    public static FreezePlan applyTo(Network model, FreezePolicy policy) {
        FreezePlan plan = policy.plan(describe(model));
        plan.apply(model);
        return plan;
    }

    /** Sets requiresGrad and BN modes on {@code model}. */
    public void apply(Network model) {
        Map<String, Parameter> tensors = model.namedTensors();
        for (Decision d : decisions) {
            if (!d.tensor().buffer()) {
                tensors.get(d.name()).freeze(!d.trainable());
            }
        }
        for (Network.NamedBatchNorm n : model.batchNorms()) {
            n.bn().setMode(bnModes.getOrDefault(n.name(), BnMode.TRAIN));
        }
    }

    /** Whether {@code name} trains. */
    public boolean isTrainable(String name) {
        return decisions.stream().anyMatch(d -> d.name().equals(name) && d.trainable());
    }

    /** Names of the trainable parameters, in state_dict order. */
    public List<String> trainableNames() {
        return decisions.stream().filter(Decision::trainable).map(Decision::name).toList();
    }

    /** Elements in trainable parameters. */
    public long trainableParameterCount() {
        return decisions.stream().filter(Decision::trainable).mapToLong(d -> d.tensor().count()).sum();
    }

    /** Elements in frozen parameters (buffers not counted, as PyTorch's {@code parameters()} does not list them). */
    public long frozenParameterCount() {
        return decisions.stream()
                .filter(d -> !d.trainable() && !d.tensor().buffer())
                .mapToLong(d -> d.tensor().count())
                .sum();
    }
}
