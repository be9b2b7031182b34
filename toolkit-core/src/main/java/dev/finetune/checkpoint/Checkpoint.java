package dev.finetune.checkpoint;

import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;
import java.util.stream.Collectors;

/**
 * The tensors of a checkpoint file, by their torchvision names ({@code layer4.1.bn2.running_var}), in file order.
 *
 * @param source the file the tensors were read from
 * @param format the format it was read as
 * @param tensors tensors by name, in the order the file lists them
 * @param metadata string facts about the file: the safetensors {@code __metadata__}, or for a {@code .pth} the
 *     archive name and, when the state_dict was wrapped ({@code {"state_dict": ..., "epoch": 3}}), {@code wrapped_key}
 *     and {@code ignored_keys}
 */
public record Checkpoint(
        Path source, CheckpointFormat format, LinkedHashMap<String, HostTensor> tensors, Map<String, String> metadata) {

    public Checkpoint {
        Objects.requireNonNull(source, "source");
        Objects.requireNonNull(format, "format");
        Objects.requireNonNull(tensors, "tensors");
        metadata = Collections.unmodifiableMap(new LinkedHashMap<>(metadata));
    }

    /** Most classes a classifier head read from a checkpoint may have (a 512 × 1,000,000 head is 2 GB). */
    public static final long MAX_HEAD_CLASSES = 1_000_000;

    /**
     * The class count of the classifier head this checkpoint holds: the rows of its {@code fc.weight} (after any
     * wrapper prefix such as {@code module.}), or empty when it has none.
     *
     * @throws CheckpointException if the row count is not a plausible class count (0, or more than
     *     {@link #MAX_HEAD_CLASSES})
     */
    public java.util.OptionalInt headClasses(String headModule) {
        String w = headModule + ".weight";
        for (Map.Entry<String, HostTensor> e : tensors.entrySet()) {
            String k = e.getKey();
            long[] shape = e.getValue().shape();
            if ((k.equals(w) || k.endsWith("." + w)) && shape.length == 2) {
                long rows = shape[0];
                if (rows < 1 || rows > MAX_HEAD_CLASSES) {
                    throw new CheckpointException(source, k + " has " + rows + " rows, so the head would have " + rows
                            + " classes; a classifier needs 1 to " + MAX_HEAD_CLASSES + " (corrupt or not a"
                            + " classifier checkpoint)");
                }
                return java.util.OptionalInt.of(Math.toIntExact(rows));
            }
        }
        return java.util.OptionalInt.empty();
    }

    /**
     * Values in parameters, counted as {@code sum(p.numel() for p in model.parameters())} does (11,689,512 for
     * torchvision's resnet18): every tensor but BatchNorm buffers and optimizer state.
     */
    public long parameterValues() {
        long n = 0;
        for (Map.Entry<String, HostTensor> e : tensors.entrySet()) {
            if (!isBuffer(e.getKey()) && !e.getKey().startsWith("optimizer.")) {
                n += e.getValue().numel();
            }
        }
        return n;
    }

    /** Values in buffers: BatchNorm running statistics and {@code num_batches_tracked} counters (9,620 for resnet18). */
    public long bufferValues() {
        long n = 0;
        for (Map.Entry<String, HostTensor> e : tensors.entrySet()) {
            if (isBuffer(e.getKey())) {
                n += e.getValue().numel();
            }
        }
        return n;
    }

    /** Values of optimizer state (a finetune training checkpoint's {@code optimizer.} tensors). */
    public long optimizerValues() {
        long n = 0;
        for (Map.Entry<String, HostTensor> e : tensors.entrySet()) {
            if (e.getKey().startsWith("optimizer.")) {
                n += e.getValue().numel();
            }
        }
        return n;
    }

    private static boolean isBuffer(String name) {
        return !name.startsWith("optimizer.") && (name.endsWith(".running_mean") || name.endsWith(".running_var")
                || name.endsWith(".num_batches_tracked"));
    }

    /** Total number of values over all tensors, parameters and buffers alike (11,699,132 for resnet18). */
    public long parameterCount() {
        long n = 0;
        for (HostTensor t : tensors.values()) {
            n += t.numel();
        }
        return n;
    }

    /** How many tensors the file stored in each dtype, by dtype name: {@code {F32=102, I64=20}}. */
    public Map<String, Long> dtypeCounts() {
        return tensors.values().stream()
                .collect(Collectors.groupingBy(HostTensor::sourceDtype, TreeMap::new, Collectors.counting()));
    }

    /** The dtype counts as a short phrase for reports: {@code "102 F32, 20 I64"}. */
    public String dtypeSummary() {
        return dtypeCounts().entrySet().stream()
                .map(e -> e.getValue() + " " + e.getKey())
                .collect(Collectors.joining(", "));
    }
}
