package dev.finetune.cli;

import java.io.PrintWriter;
import picocli.CommandLine;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;

/** {@code --json} for every command that prints a report: JSON ({@link JsonOutput}) or text, to its own output. */
final class JsonMixin {
    @Option(names = "--json", description = "machine-readable output (JSON)")
    boolean json;

    @CommandLine.Spec(CommandLine.Spec.Target.MIXEE)
    CommandSpec command;

    /** Whether the user asked for JSON. */
    boolean json() {
        return json;
    }

    /** The command's output. */
    PrintWriter out() {
        return command.commandLine().getOut();
    }

    /** Prints {@code value} as one JSON document. */
    void print(Object value) {
        out().println(JsonOutput.write(value));
        out().flush();
    }
}
