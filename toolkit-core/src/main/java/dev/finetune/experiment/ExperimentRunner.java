package dev.finetune.experiment;

import dev.finetune.ErrorKind;
import dev.finetune.FinetuneException;
import dev.finetune.checkpoint.Checkpoints;
import dev.finetune.config.ConfigLoader;
import dev.finetune.engine.ChildJvmOptions;
import dev.finetune.run.RunSummary;
import dev.finetune.train.StopSignal;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.Consumer;
import java.util.stream.Stream;

/**
 * Runs every experiment config of a folder, each in its own JVM (so each one's peak memory is its own), and
 * gathers one results table: policy, trainable parameters, epochs, wall time, img/s, peak RSS, top-1.
 */
public final class ExperimentRunner {
    private ExperimentRunner() {}

    /**
     * One row of the table.
     *
     * @param name experiment name
     * @param policy the freeze policy in one line
     * @param trainableParams trainable parameters
     * @param epochs epochs completed
     * @param wallSeconds wall time of the whole run (data loading, validation, checkpoints included)
     * @param imagesPerSecond training throughput of the last epoch
     * @param peakRssMiB the run's peak resident memory
     * @param top1 final validation top-1
     * @param bestTop1 the best value of the run's best metric ({@code train.best_metric}, val_top1 by default)
     * @param featureCache whether the feature cache was used
     * @param runDir where the run is
     * @param macroF1 final validation macro-averaged F1
     * @param bestMetric the metric {@code bestTop1} is of
     */
    public record Row(String name, String policy, long trainableParams, int epochs, double wallSeconds,
            double imagesPerSecond, double peakRssMiB, double top1, double bestTop1, boolean featureCache,
            String runDir, double macroF1, String bestMetric) {}

    /** Where a config's run folder stands before a sweep runs it. */
    enum RunState {
        /** No run yet (or a folder that a run left before its first checkpoint): train starts it. */
        NEW,
        /** A checkpoint but no finished summary: an interrupted run, which train --resume continues. */
        INTERRUPTED,
        /** A summary of a run that reached its epochs (or stopped early): kept as it is. */
        FINISHED
    }

    /**
     * {@code runDir}'s state: finished when its {@code summary.json} covers the epochs of the run's own
     * {@code config.yaml} (a run extended with {@code --resume --set train.epochs=…} and interrupted again is not).
     */
    static RunState state(Path runDir) {
        if (!Files.isRegularFile(runDir.resolve("checkpoints/last.safetensors"))) {
            return RunState.NEW;
        }
        Path config = runDir.resolve("config.yaml");
        if (Files.isRegularFile(runDir.resolve(RunSummary.FILE)) && Files.isRegularFile(config)) {
            RunSummary s = RunSummary.read(runDir);
            int epochs = ConfigLoader.load(config, List.of()).config().train().epochs();
            if (s.stoppedEarly() != null || s.epochsCompleted() >= epochs) {
                return RunState.FINISHED;
            }
        }
        return RunState.INTERRUPTED;
    }

    /**
     * Runs the configs in {@code dir} (sorted by name) with {@code java -cp classpath mainClass train …}.
     *
     * @param outRoot runs go to {@code outRoot/<config name>}
     * @param resume continue a sweep that stopped: finished runs are kept (their rows read back), an interrupted one
     *     continues from its last checkpoint ({@code train --resume}, with the config it started with), the rest
     *     start; without it, a run folder of the sweep that already holds a run is refused before anything runs
     */
    public static List<Row> run(Path dir, Path outRoot, List<String> sets, String classpath, String mainClass,
            Consumer<String> log, boolean resume) {
        List<Path> configs;
        try (Stream<Path> s = Files.list(dir)) {
            configs = s.filter(p -> p.toString().endsWith(".yaml") || p.toString().endsWith(".yml")).sorted()
                    .toList();
        } catch (IOException e) {
            throw new FinetuneException(ErrorKind.USAGE, "cannot list experiment folder " + dir + ": " + e);
        }
        if (configs.isEmpty()) {
            throw new FinetuneException(ErrorKind.USAGE, dir + ": no *.yaml experiment configs");
        }
        // Validate all before running any; a checkpoint "experiment:NAME[:ema]" must name a config that runs earlier
        // (and, for :ema, keeps a weight EMA).
        // The configs seen so far, in run order, and whether each keeps a weight EMA.
        java.util.Map<String, Boolean> keepsEma = new java.util.LinkedHashMap<>();
        java.util.Map<Path, Checkpoints.ExperimentRef> upstream = new java.util.HashMap<>();
        java.util.Map<Path, String> names = new java.util.HashMap<>(); // each config loaded once
        for (Path c : configs) {
            var config = ConfigLoader.load(c, sets).config();
            names.put(c, config.name());
            String source = config.model().checkpoint();
            if (source != null && source.startsWith(Checkpoints.EXPERIMENT_SCHEME)) {
                Checkpoints.ExperimentRef from = Checkpoints.ExperimentRef.parse(source);
                if (!keepsEma.containsKey(from.name())) {
                    throw new FinetuneException(ErrorKind.USAGE, c + ": model.checkpoint '" + source + "' names no "
                            + "experiment that runs before it in " + dir + " (configs run in file-name order: "
                            + keepsEma.keySet() + "); name the config that trains it so that it sorts first (experiment:NAME"
                            + " takes its best checkpoint, experiment:NAME:ema its weight EMA)");
                }
                if (from.which().equals("ema") && !keepsEma.get(from.name())) {
                    throw new FinetuneException(ErrorKind.USAGE, c + ": model.checkpoint '" + source + "' names the"
                            + " weight EMA of experiment '" + from.name() + "', which keeps none; set train.ema in its"
                            + " config or use experiment:" + from.name() + " (its best checkpoint)");
                }
                upstream.put(c, from);
            }
            keepsEma.put(config.name(), config.train().ema() != null);
        }
        StringBuilder again = new StringBuilder("finetune experiment " + dir + " --out " + outRoot);
        sets.forEach(s -> again.append(" --set ").append(s));
        again.append(" --resume");
        java.util.Map<Path, RunState> states = new java.util.HashMap<>();
        for (Path c : configs) {
            Path runDir = outRoot.resolve(names.get(c));
            RunState st = state(runDir);
            if (st != RunState.NEW && !resume) {
                throw new FinetuneException(ErrorKind.USAGE, runDir + " already holds " + (st == RunState.FINISHED
                        ? "a finished" : "an interrupted") + " run of " + c + "; continue the sweep with: " + again
                        + " (finished runs are kept, interrupted ones continue), or give another --out");
            }
            states.put(c, st);
        }
        List<Row> rows = new ArrayList<>();
        for (Path c : configs) {
            String name = names.get(c);
            Path runDir = outRoot.resolve(name);
            RunState st = states.get(c);
            if (st == RunState.FINISHED) {
                log.accept("== " + name + " (" + c + "): finished before, kept (" + runDir + ")");
                rows.add(row(name, runDir));
                continue;
            }
            // Each run gets this JVM's heap and GC settings (the launcher's, or FINETUNE_JAVA_OPTS).
            List<String> cmd = new ArrayList<>();
            cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
            cmd.addAll(ChildJvmOptions.inherited(arg -> false));
            cmd.addAll(List.of("-cp", classpath, mainClass, "train"));
            cmd.addAll(st == RunState.INTERRUPTED ? List.of("--resume", runDir.toString())
                    : List.of("-c", c.toString(), "--run-dir", runDir.toString()));
            cmd.add("--quiet");
            for (String s : sets) {
                cmd.add("--set");
                cmd.add(s);
            }
            if (upstream.containsKey(c)) {
                cmd.add("--set");
                Checkpoints.ExperimentRef from = upstream.get(c);
                cmd.add("model.checkpoint=" + outRoot.resolve(from.name()).resolve(from.file()).toAbsolutePath());
            }
            ErrorKind before = StopSignal.requested();
            if (before != null) {
                throw new FinetuneException(before, "the sweep stopped before experiment " + name
                        + "; continue it with: " + again);
            }
            log.accept("== " + name + " (" + c + ")" + (st == RunState.INTERRUPTED ? ": continuing " + runDir : ""));
            try {
                Process p = new ProcessBuilder(cmd).inheritIO().start();
                int code = waitForward(p);
                ErrorKind stop = StopSignal.requested();
                if (code != 0 && (stop != null || code == ErrorKind.INTERRUPTED.exitCode()
                        || code == ErrorKind.TERMINATED.exitCode())) {
                    ErrorKind why = stop != null ? stop : code == ErrorKind.INTERRUPTED.exitCode()
                            ? ErrorKind.INTERRUPTED : ErrorKind.TERMINATED;
                    throw new FinetuneException(why, "experiment " + name + " stopped (exit code " + code + ")"
                            + (Files.isRegularFile(runDir.resolve("checkpoints/last.safetensors"))
                                    ? " with a resumable checkpoint in " + runDir : "")
                            + "; continue the sweep with: " + again);
                }
                if (code != 0) {
                    throw new FinetuneException(ErrorKind.INTERNAL, "experiment " + name + " failed with exit code "
                            + code + "; its run directory is " + runDir);
                }
            } catch (IOException e) {
                throw new FinetuneException(ErrorKind.INTERNAL, "cannot start experiment " + name + ": " + e);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new FinetuneException(ErrorKind.INTERRUPTED, "interrupted during experiment " + name);
            }
            rows.add(row(name, runDir));
        }
        return rows;
    }

    /**
     * Waits for the child run, forwarding a stop that reached this JVM (Ctrl-C or SIGTERM, {@link StopSignal}) as
     * SIGTERM: the child then writes its resumable checkpoint at its next step boundary and exits 143. A Ctrl-C from a
     * terminal reaches the child too; the child ignores the forwarded SIGTERM then, so one stop is not taken for two.
     */
    private static int waitForward(Process p) throws InterruptedException {
        boolean forwarded = false;
        while (!p.waitFor(200, java.util.concurrent.TimeUnit.MILLISECONDS)) {
            if (!forwarded && StopSignal.requested() != null) {
                p.destroy();
                forwarded = true;
            }
        }
        return p.exitValue();
    }

    static Row row(String name, Path runDir) {
        RunSummary s = RunSummary.read(runDir);
        return new Row(name, s.policy(), s.trainableParams(), s.epochsCompleted(), s.wallSeconds(),
                s.imagesPerSecond() == null ? Double.NaN : s.imagesPerSecond(), s.peakRssBytes() / 1048576.0,
                s.valTop1() == null ? Double.NaN : s.valTop1(), s.bestValue() == null ? Double.NaN : s.bestValue(),
                s.featureCacheUsed(), runDir.toString(), lastMacroF1(runDir), s.bestMetric());
    }

    /** The last epoch's val_macro_f1 from metrics.jsonl, NaN when absent. */
    private static double lastMacroF1(Path runDir) {
        try {
            List<String> lines = Files.readAllLines(runDir.resolve(dev.finetune.metrics.MetricsLog.JSONL_FILE));
            for (int i = lines.size() - 1; i >= 0; i--) {
                if (!lines.get(i).isBlank()) {
                    var v = new com.fasterxml.jackson.databind.ObjectMapper().readTree(lines.get(i)).get("val_macro_f1");
                    return v == null || !v.isNumber() ? Double.NaN : v.asDouble();
                }
            }
        } catch (IOException e) {
            return Double.NaN;
        }
        return Double.NaN;
    }

    /** The table as Markdown. */
    public static String markdown(List<Row> rows) {
        StringBuilder b = new StringBuilder();
        b.append("| experiment | policy | trainable params | epochs | wall time (s) | train img/s | peak RSS (MiB)"
                + " | val top-1 | val macro-F1 | best (metric) |\n");
        b.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for (Row r : rows) {
            b.append(String.format(Locale.ROOT, "| %s | %s | %,d | %d | %.1f | %.0f%s | %.0f | %.2f%% | %.4f | %.4f"
                    + " (%s) |%n", r.name(), r.policy(), r.trainableParams(), r.epochs(), r.wallSeconds(),
                    r.imagesPerSecond(), r.featureCache() ? " (cached features)" : "", r.peakRssMiB(), 100 * r.top1(),
                    r.macroF1(), r.bestTop1(), r.bestMetric()));
        }
        return b.toString();
    }
}
