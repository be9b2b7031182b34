package dev.finetune.metrics;

import java.math.BigDecimal;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.List;

/**
 * The small CSV dialect of {@code metrics.csv}: RFC 4180 quoting, one record per line, no line breaks inside values.
 * Non-finite numbers are written as Python writes them ({@code nan}, {@code inf}, {@code -inf}) so that pandas and
 * the {@code csv} module read them back as floats; an absent value is an empty field.
 */
final class Csv {
    private Csv() {
    }

    /** One value as a field: numbers in their shortest round-trip form, text quoted when it has to be. */
    static String format(Object value) {
        if (value == null) {
            return "";
        }
        if (value instanceof Double || value instanceof Float) {
            double d = ((Number) value).doubleValue();
            if (Double.isNaN(d)) {
                return "nan";
            }
            if (Double.isInfinite(d)) {
                return d > 0 ? "inf" : "-inf";
            }
            // Float.toString, not the widened double, or 0.1f would be written as 0.10000000149011612; then without an
            // exponent (0.000853, not 8.53E-4), which reads the same in every CSV reader and in a spreadsheet.
            String shortest = value instanceof Float f ? Float.toString(f) : Double.toString(d);
            return new BigDecimal(shortest).toPlainString();
        }
        if (value instanceof Integer || value instanceof Long || value instanceof Short || value instanceof Byte
                || value instanceof BigInteger) {
            return value.toString();
        }
        if (value instanceof BigDecimal b) {
            return b.toPlainString();
        }
        return quote(String.valueOf(value));
    }

    /** Quotes a field if it holds a comma, a quote or surrounding blanks. */
    static String quote(String text) {
        if (text.indexOf('\n') >= 0 || text.indexOf('\r') >= 0) {
            throw new IllegalArgumentException("a metrics.csv field cannot contain a line break: '" + text + "'");
        }
        boolean needs = text.indexOf(',') >= 0 || text.indexOf('"') >= 0
                || (!text.isEmpty() && (Character.isWhitespace(text.charAt(0))
                        || Character.isWhitespace(text.charAt(text.length() - 1))));
        return needs ? '"' + text.replace("\"", "\"\"") + '"' : text;
    }

    static String line(List<String> fields) {
        return String.join(",", fields) + "\n";
    }

    /**
     * Splits one line into fields.
     *
     * @throws IllegalArgumentException if a quoted field is not closed
     */
    static List<String> parse(String line) {
        List<String> fields = new ArrayList<>();
        StringBuilder field = new StringBuilder();
        boolean quoted = false;
        boolean wasQuoted = false;
        for (int i = 0; i < line.length(); i++) {
            char ch = line.charAt(i);
            if (quoted) {
                if (ch == '"') {
                    if (i + 1 < line.length() && line.charAt(i + 1) == '"') {
                        field.append('"');
                        i++;
                    } else {
                        quoted = false;
                    }
                } else {
                    field.append(ch);
                }
            } else if (ch == ',') {
                fields.add(field.toString());
                field.setLength(0);
                wasQuoted = false;
            } else if (ch == '"' && field.length() == 0 && !wasQuoted) {
                quoted = true;
                wasQuoted = true;
            } else {
                field.append(ch);
            }
        }
        if (quoted) {
            throw new IllegalArgumentException("unterminated quoted field");
        }
        fields.add(field.toString());
        return fields;
    }

    /** Reads a field written by {@link #format} as a double; empty, {@code nan} and {@code n/a} are NaN. */
    static double parseDouble(String field) {
        String s = field.strip();
        switch (s.toLowerCase(java.util.Locale.ROOT)) {
            case "", "nan", "n/a", "na", "null", "none":
                return Double.NaN;
            case "inf", "+inf", "infinity", "+infinity":
                return Double.POSITIVE_INFINITY;
            case "-inf", "-infinity":
                return Double.NEGATIVE_INFINITY;
            default:
                return Double.parseDouble(s);
        }
    }
}
