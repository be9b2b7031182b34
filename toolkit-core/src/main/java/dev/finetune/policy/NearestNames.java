package dev.finetune.policy;

import java.util.Collection;
import java.util.Comparator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/** Suggestions for a pattern that matched nothing: the names closest to it by edit distance. */
final class NearestNames {
    private NearestNames() {}

    /** Up to {@code k} names (tensor or module names) nearest to {@code pattern}. */
    static List<String> nearest(String pattern, Collection<String> tensorNames, int k) {
        Set<String> candidates = new LinkedHashSet<>();
        for (String n : tensorNames) {
            candidates.add(n);
            int dot = n.lastIndexOf('.');
            while (dot > 0) {
                n = n.substring(0, dot);
                candidates.add(n);
                dot = n.lastIndexOf('.');
            }
        }
        String p = pattern.startsWith("re:") ? pattern.substring(3) : pattern;
        String key = p.replace("*", "").replace("?", "").replace("^", "").replace("$", "").replace("\\", "")
                .replaceAll("\\.+$", "");
        return candidates.stream()
                .sorted(Comparator.comparingInt((String c) -> distance(key, c)).thenComparing(c -> c))
                .limit(k)
                .toList();
    }

    /** Levenshtein distance. */
    static int distance(String a, String b) {
        int[] prev = new int[b.length() + 1];
        int[] cur = new int[b.length() + 1];
        for (int j = 0; j <= b.length(); j++) {
            prev[j] = j;
        }
        for (int i = 1; i <= a.length(); i++) {
            cur[0] = i;
            for (int j = 1; j <= b.length(); j++) {
                int sub = prev[j - 1] + (a.charAt(i - 1) == b.charAt(j - 1) ? 0 : 1);
                cur[j] = Math.min(sub, Math.min(prev[j] + 1, cur[j - 1] + 1));
            }
            int[] t = prev;
            prev = cur;
            cur = t;
        }
        return prev[b.length()];
    }
}
