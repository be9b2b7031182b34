package dev.finetune.bench;

import ai.djl.pytorch.jni.JniUtils;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Where the time of an iteration goes, op by op: libtorch's own profiler (DJL's {@code JniUtils.startProfile}) around
 * a few iterations, its chrome trace read back, and each op's self time (its duration minus the ops it called)
 * summed by name. The profiler adds a little per-op overhead, so the figures are for proportions, not for the
 * headline timings.
 */
final class OpProfile {
    private OpProfile() {}

    /**
     * Runs {@code iteration} {@code times} times under the profiler; returns the {@code top} ops by self time, in
     * milliseconds per iteration, plus {@code (other ops)} and {@code (total profiled)}.
     */
    static Map<String, Double> of(Runnable iteration, int times, int top) throws IOException {
        Path trace = Files.createTempFile("finetune-bench-trace-", ".json");
        try {
            JniUtils.startProfile(false, false, false);
            try {
                for (int i = 0; i < times; i++) {
                    iteration.run();
                }
            } finally {
                JniUtils.stopProfile(trace.toString());
            }
            String keep = System.getenv("FINETUNE_BENCH_TRACE");
            if (keep != null && !keep.isBlank()) {
                // The raw chrome trace (chrome://tracing, Perfetto), for finding which op calls which.
                Files.copy(trace, Path.of(keep), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
            }
            return selfTimes(new ObjectMapper().readTree(trace.toFile()), times, top);
        } finally {
            Files.deleteIfExists(trace);
        }
    }

    /** Self time per op name from a chrome trace ({@code ph: X} events), per iteration. */
    static Map<String, Double> selfTimes(JsonNode events, int times, int top) {
        Map<Long, List<Event>> byThread = new HashMap<>();
        for (JsonNode e : events) {
            if ("X".equals(e.path("ph").asText())) {
                Event ev = new Event(e.get("name").asText(), e.path("tid").asLong(), e.get("ts").asDouble(),
                        e.get("dur").asDouble());
                byThread.computeIfAbsent(ev.tid(), t -> new ArrayList<>()).add(ev);
            }
        }
        Map<String, Double> self = new HashMap<>();
        double total = 0;
        for (List<Event> list : byThread.values()) {
            list.sort(Comparator.comparingDouble(Event::ts).thenComparing(Comparator.comparingDouble(Event::dur)
                    .reversed()));
            // A stack of open events: an event starting before the top one ends is its child.
            List<Event> stack = new ArrayList<>();
            Map<Event, Double> childTime = new IdentityHashMap<>();
            for (Event ev : list) {
                while (!stack.isEmpty() && ev.ts() >= stack.get(stack.size() - 1).end()) {
                    stack.remove(stack.size() - 1);
                }
                if (stack.isEmpty()) {
                    total += ev.dur();
                } else {
                    childTime.merge(stack.get(stack.size() - 1), ev.dur(), Double::sum);
                }
                stack.add(ev);
            }
            for (Event ev : list) {
                self.merge(ev.name(), Math.max(0, ev.dur() - childTime.getOrDefault(ev, 0.0)), Double::sum);
            }
        }
        Map<String, Double> out = new LinkedHashMap<>();
        List<Map.Entry<String, Double>> sorted = new ArrayList<>(self.entrySet());
        sorted.sort(Map.Entry.<String, Double>comparingByValue().reversed());
        double shown = 0;
        for (int i = 0; i < Math.min(top, sorted.size()); i++) {
            out.put(sorted.get(i).getKey(), sorted.get(i).getValue() / 1000.0 / times);
            shown += sorted.get(i).getValue();
        }
        double allSelf = self.values().stream().mapToDouble(Double::doubleValue).sum();
        out.put("(other ops)", (allSelf - shown) / 1000.0 / times);
        out.put("(total profiled)", total / 1000.0 / times);
        return out;
    }

    /** One complete ({@code ph: X}) trace event; times in microseconds. */
    private record Event(String name, long tid, double ts, double dur) {
        double end() {
            return ts + dur;
        }
    }
}
