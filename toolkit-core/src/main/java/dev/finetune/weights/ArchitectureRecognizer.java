package dev.finetune.weights;

import ai.djl.nn.Parameter;
import dev.finetune.checkpoint.Checkpoint;
import dev.finetune.checkpoint.HostTensor;
import dev.finetune.model.Architecture;
import dev.finetune.model.Architectures;
import dev.finetune.model.Network;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import java.util.Optional;

/**
 * Tells the architecture of a state_dict from its keys and shapes: the one known architecture whose every tensor is
 * in the checkpoint with the same shape (the head's rows aside: they give the class count). Networks are built
 * without allocating their weights, so trying every architecture costs milliseconds.
 */
public final class ArchitectureRecognizer {
    private ArchitectureRecognizer() {}

    /** An architecture and the class count of the checkpoint's head. */
    public record Recognized(Architecture arch, int classes) {
        /** {@code torchvision efficientnet_b0, 1000 classes}. */
        public String describe() {
            return "torchvision " + arch.configName() + ", " + classes + (classes == 1 ? " class" : " classes");
        }
    }

    /** The architecture of {@code checkpoint} after {@code mapping}, or empty when none fits. */
    public static Optional<Recognized> recognize(Checkpoint checkpoint, KeyMapping mapping) {
        Map<String, HostTensor> byName = new HashMap<>();
        checkpoint.tensors().forEach((k, t) -> byName.put(mapping.map(k), t));
        Recognized best = null;
        for (Architecture a : Architectures.all()) {
            HostTensor head = byName.get(a.headName() + ".weight");
            if (head == null || head.shape().length != 2 || head.shape()[0] < 1
                    || head.shape()[0] > Checkpoint.MAX_HEAD_CLASSES) {
                continue;
            }
            int classes = Math.toIntExact(head.shape()[0]);
            Network net = a.create(classes);
            if (fits(net, byName) && best == null) {
                best = new Recognized(a, classes);
            }
        }
        return Optional.ofNullable(best);
    }

    private static boolean fits(Network net, Map<String, HostTensor> byName) {
        for (Map.Entry<String, Parameter> e : net.namedTensors().entrySet()) {
            HostTensor t = byName.get(e.getKey());
            if (t == null || !Arrays.equals(t.shape(), e.getValue().getShape().getShape())) {
                return false;
            }
        }
        return true;
    }
}
