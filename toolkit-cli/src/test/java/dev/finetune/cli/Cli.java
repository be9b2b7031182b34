package dev.finetune.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine;

/** Runs the real {@code finetune} command, in this JVM or as a separate process, and captures what it prints. */
final class Cli {
    /** Debian's interpreter with torch (the python3 on PATH may be another one). */
    static final String PYTHON = "/usr/bin/python3";

    private Cli() {}

    /**
     * A finished command.
     *
     * @param code exit code
     * @param out standard output
     * @param err standard error
     */
    record Result(int code, String out, String err) {}

    /** Runs in this JVM. */
    static Result run(String... args) {
        CommandLine cl = FinetuneCli.commandLine();
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        cl.setOut(new PrintWriter(out, true));
        cl.setErr(new PrintWriter(err, true));
        int code = cl.execute(args);
        return new Result(code, out.toString(), err.toString());
    }

    /** Starts {@code finetune ARGS} as a separate JVM (for signals and kills). */
    static Process start(Path log, String... args) throws IOException {
        return start(log, List.of(), args);
    }

    /** Starts {@code finetune ARGS} as a separate JVM with extra JVM options ({@code -Dkey=value}). */
    static Process start(Path log, List<String> jvmOptions, String... args) throws IOException {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.add("-Dai.djl.offline=true");
        // One libtorch thread: tests start several of these side by side on a 2-core machine. And the test JVMs' own
        // JIT and collector (the root pom's djl.test.argLine): a short-lived child then starts on ~2 s of CPU instead
        // of ~3 (C2 compiling and G1's threads for a run of seconds), CPU the other test JVM waits for.
        cmd.add("-Dai.djl.pytorch.num_threads=1");
        cmd.add("-Dai.djl.pytorch.num_interop_threads=1");
        cmd.add("-XX:TieredStopAtLevel=1");
        cmd.add("-XX:+UseSerialGC");
        cmd.add("-Xmx2g");
        cmd.addAll(jvmOptions);
        cmd.add("-cp");
        cmd.add(System.getProperty("java.class.path"));
        cmd.add("dev.finetune.cli.FinetuneCli");
        cmd.addAll(List.of(args));
        return new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
    }

    /** Sends a signal by name (INT, TERM, KILL) to a process. */
    static void signal(Process p, String name) throws IOException, InterruptedException {
        Process k = new ProcessBuilder("kill", "-" + name, Long.toString(p.pid())).inheritIO().start();
        k.waitFor(10, TimeUnit.SECONDS);
    }

    /** Waits until {@code file} contains {@code text}. */
    static void awaitText(Path file, String text, long seconds) throws IOException, InterruptedException {
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        while (System.nanoTime() < end) {
            if (Files.exists(file) && Files.readString(file).contains(text)) {
                return;
            }
            Thread.sleep(100);
        }
        throw new AssertionError("'" + text + "' did not appear in " + file + " within " + seconds + " s:\n"
                + (Files.exists(file) ? Files.readString(file) : "(no file)"));
    }

    /** The repository root. */
    static Path repo() {
        Path p = Path.of("").toAbsolutePath();
        while (p != null && !Files.isDirectory(p.resolve("configs"))) {
            p = p.getParent();
        }
        if (p == null) {
            throw new IllegalStateException("repository root not found from " + Path.of("").toAbsolutePath());
        }
        return p;
    }

    /** Writes a small experiment config into {@code dir} over the committed quickstart data and checkpoint. */
    static Path config(Path dir, String name, String freeze, String train) throws IOException {
        return config(dir, name, freeze, train, repo().resolve("data/fashion-mnist-b"));
    }

    /** {@link #config(Path, String, String, String)} on another image folder (e.g. {@link #smallData}). */
    static Path config(Path dir, String name, String freeze, String train, Path data) throws IOException {
        Path repo = repo();
        String yaml = "name: " + name + "\n"
                + "model:\n"
                + "  arch: resnet18\n"
                + "  checkpoint: " + repo.resolve("models/resnet18-fmnist-a.safetensors") + "\n"
                + "  head: {classes: auto}\n"
                + "freeze: " + freeze + "\n"
                + "optimizer: {name: sgd, lr: 0.01, momentum: 0.9}\n"
                + "data:\n"
                + "  root: " + data + "\n"
                + "  image_size: 32\n"
                + "  resize: 32\n"
                + "  augment: false\n"
                + "  workers: 2\n"
                + "train: " + withoutReport(train) + "\n";
        Path f = dir.resolve(name + ".yaml");
        Files.writeString(f, yaml);
        return f;
    }

    /**
     * The tests' runs skip report.html (a model load and a validation pass each, ~2 s) unless the train section asks
     * for it: ReportBrowserTest checks the report, and the quickstart writes it with the default.
     */
    private static String withoutReport(String train) {
        return train.startsWith("{") && !train.contains("report:") ? "{report: false, " + train.substring(1) : train;
    }

    /**
     * The first {@code train} and {@code val} images of each class of the quickstart data, copied into {@code to}:
     * the same classes and image kind, so runs on it behave like runs on the full folder, in a fraction of the time.
     */
    static Path smallData(Path to, int train, int val) throws IOException {
        Path from = repo().resolve("data/fashion-mnist-b");
        for (String split : List.of("train", "val")) {
            try (var classes = Files.list(from.resolve(split))) {
                for (Path c : classes.sorted().toList()) {
                    Path dest = Files.createDirectories(to.resolve(split).resolve(c.getFileName()));
                    try (var files = Files.list(c)) {
                        for (Path f : files.sorted().limit(split.equals("train") ? train : val).toList()) {
                            Files.copy(f, dest.resolve(f.getFileName()));
                        }
                    }
                }
            }
        }
        return to;
    }

    /** Runs a Python script with Debian's interpreter; fails with its output. */
    static String python(String... args) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>();
        cmd.add(PYTHON);
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        if (!p.waitFor(300, TimeUnit.SECONDS) || p.exitValue() != 0) {
            throw new AssertionError("python failed: " + cmd + "\n" + out
                    + "\n(needs Debian's python3-torchvision; .ci/run installs it)");
        }
        return out;
    }
}
