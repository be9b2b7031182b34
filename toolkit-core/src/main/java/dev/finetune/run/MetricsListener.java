package dev.finetune.run;

import dev.finetune.metrics.EpochRow;
import dev.finetune.metrics.MetricsLog;
import dev.finetune.optim.ParamSlot;
import dev.finetune.report.Plots;
import dev.finetune.train.TrainContext;
import dev.finetune.train.TrainingListener;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Appends each epoch to {@code metrics.csv} and {@code metrics.jsonl} and redraws the curves and the confusion
 * matrix in {@code plots/}.
 */
public final class MetricsListener implements TrainingListener {
    private final RunDirectory run;
    private MetricsLog log;

    public MetricsListener(RunDirectory run) {
        this.run = run;
    }

    @Override
    public void onTrainStart(TrainContext ctx) {
        log = ctx.state().epochsCompleted() > 0
                ? MetricsLog.resume(run.root(), ctx.state().epochsCompleted())
                : MetricsLog.open(run.root());
    }

    @Override
    public void onEpochEnd(TrainContext ctx, EpochSummary s) {
        Map<String, Double> byGroup = new LinkedHashMap<>();
        for (ParamSlot slot : ctx.fineTuner().optimizer().slots()) {
            byGroup.putIfAbsent(slot.group(), s.lr() * slot.lrMult());
        }
        EpochRow row = EpochRow.of(s.epoch(), s.trainLoss(), s.val(), ctx.classNames(), s.lr(), s.seconds(),
                s.imagesPerSecond(), s.trainableParams(), byGroup).withEma(s.emaVal());
        log.append(row);
        Plots.curves(log.csvPath(), run.plots().resolve("curves.png"));
        // The confusion matrix of the best checkpoint (the one evaluate, predict and export use), redrawn when a new
        // best is found; CheckpointListener has already recorded it.
        if (s.val() != null && ctx.state().bestEpoch() == s.epoch()) {
            Plots.confusionMatrix(s.val().confusion(), ctx.classNames(), run.plots().resolve("confusion.png"),
                    "Confusion matrix of the best checkpoint, epoch " + s.epoch() + " (rows: true, columns: predicted)");
        }
    }

    @Override
    public void onTrainFailed(TrainContext ctx, RuntimeException error) {
        onTrainEnd(ctx);
    }

    @Override
    public void onTrainEnd(TrainContext ctx) {
        if (log != null) {
            log.close();
        }
    }
}
