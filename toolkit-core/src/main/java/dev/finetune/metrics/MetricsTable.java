package dev.finetune.metrics;

import dev.finetune.ErrorKind;
import dev.finetune.FinetuneException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The rows of a {@code metrics.csv} as read back by {@link MetricsLog#read}: text cells, with typed access by column.
 *
 * @param source the file the table was read from, for error messages
 * @param columns the header, in file order
 * @param rows one list of cells per data row, each as long as {@code columns}
 */
public record MetricsTable(Path source, List<String> columns, List<List<String>> rows) {

    /** Takes immutable copies and checks that every row is as wide as the header. */
    public MetricsTable {
        columns = List.copyOf(columns);
        List<List<String>> copy = new ArrayList<>(rows.size());
        for (int r = 0; r < rows.size(); r++) {
            if (rows.get(r).size() != columns.size()) {
                throw new IllegalArgumentException("row " + r + " has " + rows.get(r).size() + " cells, the header has "
                        + columns.size());
            }
            copy.add(List.copyOf(rows.get(r)));
        }
        rows = List.copyOf(copy);
    }

    /** The number of data rows. */
    public int size() {
        return rows.size();
    }

    /** Whether the header has this column. */
    public boolean hasColumn(String column) {
        return columns.contains(column);
    }

    /** One cell as text. */
    public String value(int row, String column) {
        return rows.get(row).get(indexOf(column));
    }

    /** One row as column → cell text, in header order. */
    public Map<String, String> row(int row) {
        Map<String, String> out = new LinkedHashMap<>();
        for (int c = 0; c < columns.size(); c++) {
            out.put(columns.get(c), rows.get(row).get(c));
        }
        return out;
    }

    /**
     * A column as numbers; empty cells, {@code nan} and {@code n/a} become NaN.
     *
     * @throws IllegalArgumentException if there is no such column
     * @throws FinetuneException {@link ErrorKind#OUTPUT} if a cell is not a number (the file was edited or damaged)
     */
    public double[] doubles(String column) {
        int c = indexOf(column);
        double[] out = new double[rows.size()];
        for (int r = 0; r < rows.size(); r++) {
            String cell = rows.get(r).get(c);
            try {
                out[r] = Csv.parseDouble(cell);
            } catch (NumberFormatException e) {
                // Line numbers are 1-based and the header is line 1.
                throw new FinetuneException(ErrorKind.OUTPUT, source + " line " + (r + 2) + ", column " + column
                        + ": expected a number, found '" + cell + "'", e);
            }
        }
        return out;
    }

    private int indexOf(String column) {
        int c = columns.indexOf(column);
        if (c < 0) {
            throw new IllegalArgumentException(source + " has no column '" + column + "'; it has " + columns);
        }
        return c;
    }
}
