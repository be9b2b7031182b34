package dev.finetune.weights;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * What happened to every key when a checkpoint was loaded into a model: a mismatch is never silent.
 *
 * @param source the checkpoint file or source name
 * @param format the checkpoint's format
 * @param matched model names that received values
 * @param missing model names the checkpoint has no value for
 * @param unexpected checkpoint keys (after mapping) the model has no tensor for
 * @param shapeMismatches keys present on both sides with different shapes
 * @param ignored checkpoint keys deliberately not loaded ({@code num_batches_tracked})
 * @param headReplaced the head keys not loaded because the model has a new head of another size
 * @param renamed checkpoint key → model name, for the keys the mapping changed
 * @param converted source dtype → count, for tensors converted to fp32 (F16, BF16, F64)
 */
public record LoadReport(
        String source,
        String format,
        List<String> matched,
        List<String> missing,
        List<String> unexpected,
        List<ShapeMismatch> shapeMismatches,
        List<String> ignored,
        List<ShapeMismatch> headReplaced,
        Map<String, String> renamed,
        Map<String, Integer> converted) {

    /** A key whose shapes differ between checkpoint and model. */
    public record ShapeMismatch(String name, long[] checkpointShape, long[] modelShape) {
        @Override
        public String toString() {
            return name + ": checkpoint " + java.util.Arrays.toString(checkpointShape) + ", model "
                    + java.util.Arrays.toString(modelShape);
        }
    }

    /** True when nothing is missing, unexpected or mis-shaped (a replaced head does not count). */
    public boolean isClean() {
        return missing.isEmpty() && unexpected.isEmpty() && shapeMismatches.isEmpty();
    }

    /** The problems, one line each, for an error message. */
    public List<String> problems() {
        List<String> out = new ArrayList<>();
        missing.forEach(m -> out.add("missing in checkpoint: " + m));
        unexpected.forEach(u -> out.add("unexpected in checkpoint: " + u));
        shapeMismatches.forEach(s -> out.add("shape mismatch: " + s));
        return out;
    }

    /** A human-readable summary, as {@code finetune checkpoint inspect} prints it. */
    public String summary() {
        StringBuilder b = new StringBuilder();
        b.append(String.format(
                "matched %d, missing %d, unexpected %d, shape-mismatched %d, ignored %d%n",
                matched.size(), missing.size(), unexpected.size(), shapeMismatches.size(), ignored.size()));
        if (!renamed.isEmpty()) {
            b.append(String.format("renamed %d keys (e.g. %s)%n", renamed.size(), renamed.entrySet().iterator().next()));
        }
        if (!converted.isEmpty()) {
            b.append("converted to fp32: ").append(converted).append(System.lineSeparator());
        }
        for (ShapeMismatch h : headReplaced) {
            b.append("new head (model.head): ").append(h.name()).append(' ')
                    .append(java.util.Arrays.toString(h.modelShape())).append(" starts fresh");
            b.append(java.util.Arrays.equals(h.checkpointShape(), h.modelShape())
                    ? "; the checkpoint's is not loaded"
                    : " instead of the checkpoint's " + java.util.Arrays.toString(h.checkpointShape()));
            b.append(System.lineSeparator());
        }
        limit(b, "missing", missing);
        limit(b, "unexpected", unexpected);
        for (ShapeMismatch s : shapeMismatches) {
            b.append("  shape mismatch: ").append(s).append(System.lineSeparator());
        }
        if (!ignored.isEmpty()) {
            long counters = ignored.stream().filter(k -> k.endsWith(".num_batches_tracked")).count();
            if (counters > 0) {
                b.append("ignored: ").append(counters).append(" num_batches_tracked counters (no effect on the math)")
                        .append(System.lineSeparator());
            }
            if (counters < ignored.size()) {
                b.append("ignored: ").append(ignored.size() - counters).append(" optimizer-state tensors")
                        .append(System.lineSeparator());
            }
        }
        return b.toString();
    }

    private static void limit(StringBuilder b, String what, List<String> keys) {
        int shown = 0;
        for (String k : keys) {
            if (shown++ == 20) {
                b.append("  … and ").append(keys.size() - 20).append(" more ").append(what).append(System.lineSeparator());
                break;
            }
            b.append("  ").append(what).append(": ").append(k).append(System.lineSeparator());
        }
    }
}
