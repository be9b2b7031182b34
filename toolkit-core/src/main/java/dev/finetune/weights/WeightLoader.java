package dev.finetune.weights;

import ai.djl.ndarray.NDArray;
import ai.djl.nn.Parameter;
import dev.finetune.checkpoint.Checkpoint;
import dev.finetune.checkpoint.CheckpointException;
import dev.finetune.checkpoint.CheckpointFormat;
import dev.finetune.checkpoint.HostTensor;
import dev.finetune.model.BatchNorm2d;
import dev.finetune.model.Architecture;
import dev.finetune.model.Network;
import java.nio.FloatBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Copies a checkpoint's tensors into a {@link Network} by torchvision name and reports every key's fate. Strict by
 * default: anything missing, unexpected or mis-shaped is an error that lists the keys, unless the only difference is
 * a head the user asked to replace.
 */
public final class WeightLoader {
    private static final String BATCHES_TRACKED = "num_batches_tracked";

    private WeightLoader() {}

    /**
     * How to load.
     *
     * @param mapping checkpoint key → model name
     * @param strict fail on any missing / unexpected / mis-shaped key
     * @param newHead the model's head ({@code fc}, {@code classifier.1} …) is new: the checkpoint's is not loaded
     */
    public record Options(KeyMapping mapping, boolean strict, boolean newHead) {
        public static Options defaults() {
            return new Options(KeyMapping.defaults(), true, false);
        }
    }

    /** Loads {@code checkpoint} into {@code model} (already initialized) and returns the report. */
    public static LoadReport load(Network model, Checkpoint checkpoint, Options options) {
        LoadReport report = plan(model, checkpoint, options);
        if (options.strict() && !report.isClean()) {
            throw new CheckpointException(checkpoint.source(), strictMessage(model, report));
        }
        Map<String, HostTensor> byName = mapped(checkpoint, options.mapping(), model.arch());
        Map<String, Parameter> tensors = model.namedTensors();
        for (String name : report.matched()) {
            copyInto(tensors.get(name), byName.get(name));
        }
        Map<String, BatchNorm2d> bns = new HashMap<>();
        model.batchNorms().forEach(n -> bns.put(n.name(), n.bn()));
        for (String name : report.ignored()) {
            if (!name.endsWith("." + BATCHES_TRACKED)) {
                continue;
            }
            BatchNorm2d bn = bns.get(name.substring(0, name.length() - BATCHES_TRACKED.length() - 1));
            HostTensor t = byName.get(name);
            if (bn != null && t.data().length == 1) {
                bn.setNumBatchesTracked((long) t.data()[0]);
            }
        }
        return report;
    }

    /** Works out the report without changing the model (what {@code checkpoint inspect} shows). */
    public static LoadReport plan(Network model, Checkpoint checkpoint, Options options) {
        Map<String, HostTensor> byName = mapped(checkpoint, options.mapping(), model.arch());
        Map<String, String> renamed = new LinkedHashMap<>();
        for (String key : checkpoint.tensors().keySet()) {
            String name = model.arch().normalizeKey(options.mapping().map(key));
            if (!name.equals(key)) {
                renamed.put(key, name);
            }
        }
        Map<String, Parameter> tensors = model.namedTensors();
        List<String> matched = new ArrayList<>();
        List<String> missing = new ArrayList<>();
        List<LoadReport.ShapeMismatch> mismatched = new ArrayList<>();
        List<LoadReport.ShapeMismatch> headReplaced = new ArrayList<>();
        Map<String, Integer> converted = new TreeMap<>();
        for (Map.Entry<String, Parameter> e : tensors.entrySet()) {
            String name = e.getKey();
            long[] modelShape = e.getValue().getShape().getShape();
            HostTensor t = byName.get(name);
            boolean head = name.startsWith(model.headName() + ".");
            if (t == null) {
                if (!(head && options.newHead())) {
                    missing.add(name);
                }
                continue;
            }
            if (head && options.newHead()) {
                headReplaced.add(new LoadReport.ShapeMismatch(name, t.shape(), modelShape));
                continue;
            }
            if (!Arrays.equals(t.shape(), modelShape)) {
                mismatched.add(new LoadReport.ShapeMismatch(name, t.shape(), modelShape));
                continue;
            }
            matched.add(name);
            if (!"F32".equals(t.sourceDtype())) {
                converted.merge(t.sourceDtype(), 1, Integer::sum);
            }
        }
        List<String> unexpected = new ArrayList<>();
        List<String> ignored = new ArrayList<>();
        for (String name : byName.keySet()) {
            if (tensors.containsKey(name)) {
                continue;
            }
            if (name.endsWith("." + BATCHES_TRACKED)
                    || (checkpoint.format() == CheckpointFormat.FINETUNE && name.startsWith("optimizer."))) {
                ignored.add(name);
            } else {
                unexpected.add(name);
            }
        }
        return new LoadReport(
                checkpoint.source().toString(),
                checkpoint.format().name(),
                matched,
                missing,
                unexpected,
                mismatched,
                ignored,
                headReplaced,
                renamed,
                converted);
    }

    private static Map<String, HostTensor> mapped(Checkpoint checkpoint, KeyMapping mapping, Architecture arch) {
        Map<String, HostTensor> out = new LinkedHashMap<>();
        Map<String, String> origin = new HashMap<>();
        for (Map.Entry<String, HostTensor> e : checkpoint.tensors().entrySet()) {
            String name = arch.normalizeKey(mapping.map(e.getKey()));
            String before = origin.put(name, e.getKey());
            if (before != null) {
                throw new CheckpointException(
                        checkpoint.source(),
                        "keys '" + before + "' and '" + e.getKey() + "' both map to '" + name
                                + "'; adjust model.key_prefix / model.remap so each key maps to one name");
            }
            out.put(name, e.getValue());
        }
        return out;
    }

    private static void copyInto(Parameter p, HostTensor t) {
        NDArray a = p.getArray();
        a.set(FloatBuffer.wrap(t.data()));
    }

    private static String strictMessage(Network model, LoadReport r) {
        StringBuilder b = new StringBuilder();
        b.append("does not fit ").append(model.arch().configName()).append(": ");
        List<String> problems = r.problems();
        b.append(problems.size()).append(problems.size() == 1 ? " problem" : " problems");
        for (int i = 0; i < Math.min(problems.size(), 12); i++) {
            b.append(System.lineSeparator()).append("  ").append(problems.get(i));
        }
        if (problems.size() > 12) {
            b.append(System.lineSeparator()).append("  … and ").append(problems.size() - 12).append(" more");
        }
        b.append(System.lineSeparator()).append("Fix: ").append(hint(model, r));
        return b.toString();
    }

    /** The most likely fix, from the shape of the mismatch. */
    private static String hint(Network model, LoadReport r) {
        String prefix = commonPrefix(r.unexpected());
        if (!r.unexpected().isEmpty() && prefix != null && r.matched().isEmpty()) {
            return "the checkpoint's keys start with '" + prefix + "': set model.key_prefix: \"" + prefix + "\"";
        }
        boolean onlyHead = r.missing().isEmpty() && r.unexpected().isEmpty()
                && r.shapeMismatches().stream().allMatch(s -> s.name().startsWith(model.headName() + "."));
        if (onlyHead && !r.shapeMismatches().isEmpty()) {
            return "the checkpoint's head has " + r.shapeMismatches().get(0).checkpointShape()[0]
                    + " classes; set model.head.classes to replace it with a new head";
        }
        if (!r.shapeMismatches().isEmpty() && r.matched().size() < r.shapeMismatches().size()) {
            return "this looks like a different architecture; check model.arch";
        }
        return "map the names with model.key_prefix / model.remap, or set model.strict: false to load only what"
                + " matches (the report lists what is skipped)";
    }

    private static String commonPrefix(List<String> keys) {
        if (keys.isEmpty()) {
            return null;
        }
        String first = keys.get(0);
        int dot = first.indexOf('.');
        if (dot < 0) {
            return null;
        }
        String p = first.substring(0, dot + 1);
        return keys.stream().allMatch(k -> k.startsWith(p)) ? p : null;
    }
}
