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
 * Tells the architecture of a state_dict from its keys and shapes: the one known architecture whose tensors are
 * exactly the checkpoint's (BN counters and optimizer state aside), with the same shapes (the head's rows give the
 * class count). Exactly, not a subset: EfficientNet-B0's tensors are a subset of B1's. Networks are built
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
        Recognized best = null;
        for (Architecture a : Architectures.all()) {
            Map<String, HostTensor> byName = new HashMap<>();
            checkpoint.tensors().forEach((k, t) -> {
                String name = a.normalizeKey(mapping.map(k));
                if (!name.endsWith(".num_batches_tracked") && !name.startsWith("optimizer.")) {
                    byName.put(name, t);
                }
            });
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
        if (net.namedTensors().size() != byName.size()) {
            return false;
        }
        for (Map.Entry<String, Parameter> e : net.namedTensors().entrySet()) {
            HostTensor t = byName.get(e.getKey());
            if (t == null || !Arrays.equals(t.shape(), e.getValue().getShape().getShape())) {
                return false;
            }
        }
        return true;
    }
}
