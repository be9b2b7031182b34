package dev.finetune.cli;

import dev.finetune.report.RunReport;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

/** {@code finetune report RUN_DIR}: rebuilds the run's report.html. */
@Command(name = "report", mixinStandardHelpOptions = true,
        description = "Rebuild RUN_DIR/report.html: curves, confusion matrix, per-class metrics, confident mistakes,"
                + " calibration and the freeze map of the best checkpoint, in one self-contained page.")
final class ReportCommand implements Callable<Integer> {
    @Parameters(paramLabel = "RUN_DIR", description = "a run folder written by finetune train")
    Path runDir;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        Path out = RunReport.write(runDir);
        PrintWriter o = spec.commandLine().getOut();
        o.printf("wrote %s%n", out);
        o.flush();
        return 0;
    }
}
