package dev.finetune.cli;

import dev.finetune.ErrorKind;
import dev.finetune.FinetuneException;
import java.io.PrintWriter;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * {@code finetune}: the command line. Parses, prints and maps errors to exit codes; everything else is in
 * toolkit-core.
 */
@Command(
        name = "finetune",
        mixinStandardHelpOptions = true,
        versionProvider = VersionInfo.class,
        description = "Fine-tune pretrained torchvision CNNs on the JVM: torchvision-exact weights, explicit freezing.",
        subcommands = {
            CheckpointCommand.class,
            InspectCommand.class,
            ConfigCommand.class,
            TrainCommand.class,
            EvaluateCommand.class,
            PredictCommand.class,
            ExportCommand.class,
            ReportCommand.class,
            ExperimentCommand.class,
            LrFindCommand.class,
            AdviseCommand.class,
            FeaturesCommand.class,
            BenchCommand.class,
            CommandLine.HelpCommand.class
        },
        exitCodeListHeading = "%nExit codes:%n")
public final class FinetuneCli implements Runnable {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    /** Allows fetching torchvision: weights missing from PyTorch's cache, for this command. */
    @CommandLine.Option(names = "--download", scope = CommandLine.ScopeType.INHERIT,
            description = "allow downloading torchvision: weights that are not in PyTorch's cache (default: never;"
                    + " also FINETUNE_DOWNLOAD=true)")
    void download(boolean allow) {
        if (allow) {
            System.setProperty(dev.finetune.checkpoint.TorchvisionWeights.DOWNLOAD_PROPERTY, "true");
        }
    }

    /**
     * Shows the engine's INFO messages too (library loading, thread settings), and — through the launcher — libtorch's
     * native warnings. Set while parsing, before any engine class has created its logger.
     */
    @CommandLine.Option(names = "--verbose", scope = CommandLine.ScopeType.INHERIT,
            description = "show the engine's informational messages and native warnings (default: warnings only)")
    void verbose(boolean on) {
        if (on && System.getProperty(LOG_LEVEL) == null) {
            System.setProperty(LOG_LEVEL, "info");
            System.setProperty("org.slf4j.simpleLogger.log.ai.djl.util.cuda.CudaUtils", "info");
        }
    }

    /** slf4j-simple's level property; its default (WARN) is in simplelogger.properties. */
    static final String LOG_LEVEL = "org.slf4j.simpleLogger.defaultLogLevel";

    @Override
    public void run() {
        throw new CommandLine.ParameterException(spec.commandLine(), "a command is required (see --help)");
    }

    /** Builds the command line with the toolkit's error handling. */
    public static CommandLine commandLine() {
        CommandLine cl = new CommandLine(new FinetuneCli());
        // The exit-code table comes from ErrorKind, the one list of them.
        java.util.Map<String, String> codes = new java.util.LinkedHashMap<>();
        codes.put("0", "success");
        for (ErrorKind k : ErrorKind.values()) {
            codes.put(Integer.toString(k.exitCode()), k.meaning());
        }
        cl.getCommandSpec().usageMessage().exitCodeList(codes);
        cl.setExecutionExceptionHandler(FinetuneCli::handle);
        cl.setParameterExceptionHandler((ex, args) -> {
            PrintWriter err = ex.getCommandLine().getErr();
            err.println("error: " + ex.getMessage());
            if (ex instanceof CommandLine.UnmatchedArgumentException u) {
                // "tarin" → "Did you mean: train?"
                CommandLine.UnmatchedArgumentException.printSuggestions(u, err);
            }
            err.println("Try '" + ex.getCommandLine().getCommandSpec().qualifiedName() + " --help'.");
            return ErrorKind.USAGE.exitCode();
        });
        return cl;
    }

    private static int handle(Exception ex, CommandLine cl, CommandLine.ParseResult parsed) {
        PrintWriter err = cl.getErr();
        Throwable t = ex;
        while (!(t instanceof FinetuneException) && t.getCause() != null && t.getCause() != t) {
            t = t.getCause();
        }
        if (t instanceof FinetuneException f) {
            err.println("error: " + f.getMessage());
            err.flush();
            return f.kind().exitCode();
        }
        err.println("internal error: " + ex);
        ex.printStackTrace(err);
        err.println("This is a bug in finetune; please report it with the command you ran.");
        err.flush();
        return ErrorKind.INTERNAL.exitCode();
    }

    public static void main(String[] args) {
        int code = commandLine().execute(args);
        System.exit(code);
    }
}
