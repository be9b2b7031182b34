package dev.finetune.model;

import ai.djl.ndarray.types.Shape;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What the fast-path guard ({@link GuardedPrefix}) checked and decided: the execution path asked for, the one in use,
 * every check with its figures, and every fallback with its reason. Written into {@code run.json}.
 *
 * @param requested the path asked for, e.g. {@code "folded, channels-last"}
 * @param inUse the path in use now, e.g. {@code "folded, channels-last: stem, layer1, layer2, layer3; NCHW: layer4"}
 * @param checks every check, oldest first
 * @param fallbacks every fallback, with what was measured
 * @param tolerance the rule each check applied, in words
 */
public record FastPathReport(String requested, String inUse, List<Check> checks, List<String> fallbacks,
        String tolerance) {

    /** float32 paths: {@link GuardedPrefix#TOLERANCE}. */
    public FastPathReport(String requested, String inUse, List<Check> checks, List<String> fallbacks) {
        this(requested, inUse, checks, fallbacks, "max|diff| <= " + GuardedPrefix.TOLERANCE + " * max(1, max|plain|)");
    }

    /**
     * One check of the whole prefix on one input shape.
     *
     * @param input the input shape (N, C, H, W)
     * @param path the path checked
     * @param maxAbsDiff largest elementwise difference from the plain network's output
     * @param scale {@code max(1, max |plain output|)}; the tolerance is {@link GuardedPrefix#TOLERANCE} times this
     * @param convMismatches convolutions whose channels-last result differed from NCHW on this input
     * @param passed whether the path was within tolerance
     */
    public record Check(Shape input, String path, double maxAbsDiff, double scale, List<ConvMismatch> convMismatches,
            boolean passed) {}

    /**
     * A convolution whose channels-last output differs from the same convolution on NCHW.
     *
     * @param conv module name, e.g. {@code layer4.0.downsample.0}
     * @param shape e.g. {@code 1x1 stride 2 padding 0, 256->512}
     * @param input its input shape
     * @param maxAbsDiff largest elementwise difference
     * @param scale {@code max(1, max |NCHW output|)}
     */
    public record ConvMismatch(String conv, String shape, Shape input, double maxAbsDiff, double scale) {
        @Override
        public String toString() {
            return conv + " (" + shape + ", input " + input + ") differs by " + fmt(maxAbsDiff) + " at max |y| "
                    + fmt(scale);
        }
    }

    /** Whether any fallback happened. */
    public boolean degraded() {
        return !fallbacks.isEmpty();
    }

    /** A JSON-ready tree for {@code run.json}. */
    public Map<String, Object> toMap() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("requested", requested);
        m.put("in_use", inUse);
        m.put("tolerance", tolerance);
        List<Map<String, Object>> cs = new ArrayList<>();
        for (Check c : checks) {
            Map<String, Object> cm = new LinkedHashMap<>();
            cm.put("input", c.input().toString());
            cm.put("path", c.path());
            cm.put("max_abs_diff", c.maxAbsDiff());
            cm.put("scale", c.scale());
            cm.put("passed", c.passed());
            cm.put("conv_mismatches", c.convMismatches().stream().map(ConvMismatch::toString).toList());
            cs.add(cm);
        }
        m.put("checks", cs);
        m.put("fallbacks", fallbacks);
        return m;
    }

    static String fmt(double v) {
        return String.format("%.3g", v);
    }
}
