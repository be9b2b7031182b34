package dev.finetune.cli;

import dev.finetune.train.TrainContext;
import dev.finetune.train.TrainingListener;
import java.io.PrintWriter;
import java.util.Locale;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;

/**
 * Shows training as it runs: a progress bar per epoch with images/s and ETA (me.tongfei:progressbar), or, with
 * {@code --quiet}, one log line per epoch.
 */
final class ProgressListener implements TrainingListener {
    private final PrintWriter out;
    private final java.nio.file.Path runDir;
    private final boolean bar;
    private ProgressBar progress;
    private long images;
    private long startNanos;

    ProgressListener(PrintWriter out, java.nio.file.Path runDir, boolean bar) {
        this.out = out;
        this.runDir = runDir;
        this.bar = bar;
    }

    @Override
    public void onTrainStart(TrainContext ctx) {
        var ft = ctx.fineTuner();
        out.printf(Locale.ROOT, "run: %s%n", runDir);
        out.printf(Locale.ROOT, "data: %s (%d train, %d val images, %d classes)%n", ctx.data().description(),
                ctx.data().train().size(), ctx.data().val() == null ? 0 : ctx.data().val().size(),
                ctx.data().numClasses());
        if (!ctx.hasValidation()) {
            out.printf(Locale.ROOT, "warning: there is no validation set (no val/ folder, data.val_split 0): accuracy"
                    + " is not measured and the best checkpoint is the one with the lowest train_loss; set"
                    + " data.val_split: 0.1 to hold out 10%% of the images%n");
        }
        out.printf(Locale.ROOT, "policy: %s%n", ft.plan().policy().describe());
        out.printf(Locale.ROOT, "trainable %,d of %,d parameters (%.2f%%)%n", ft.plan().trainableParameterCount(),
                ft.plan().trainableParameterCount() + ft.plan().frozenParameterCount(),
                100.0 * ft.plan().trainableParameterCount()
                        / (ft.plan().trainableParameterCount() + ft.plan().frozenParameterCount()));
        if (ctx.state().epochsCompleted() > 0 || ctx.state().batchesIntoEpoch() > 0) {
            out.printf(Locale.ROOT, "resuming after epoch %d, batch %d (step %d)%n", ctx.state().epochsCompleted(),
                    ctx.state().batchesIntoEpoch(), ctx.state().globalStep());
        }
        out.flush();
    }

    @Override
    public void onEpochStart(TrainContext ctx, int epoch, int batches) {
        images = 0;
        startNanos = System.nanoTime();
        if (bar) {
            progress = new ProgressBarBuilder()
                    .setTaskName(String.format(Locale.ROOT, "epoch %d/%d", epoch,
                            ctx.settings().epochs()))
                    .setInitialMax(batches)
                    .setStyle(ProgressBarStyle.ASCII)
                    .setUpdateIntervalMillis(250)
                    .showSpeed()
                    .setUnit(" batches", 1)
                    .continuousUpdate()
                    .build();
            progress.stepTo(ctx.state().batchesIntoEpoch());
        }
    }

    @Override
    public void onStep(TrainContext ctx, int batchInEpoch, int n, float loss, double lr) {
        images += n;
        if (progress != null) {
            double secs = (System.nanoTime() - startNanos) / 1e9;
            progress.stepTo(batchInEpoch);
            progress.setExtraMessage(String.format(Locale.ROOT, "loss %.4f lr %.3g %.0f img/s", loss, lr,
                    images / Math.max(1e-9, secs)));
        }
    }

    @Override
    public void onEpochEnd(TrainContext ctx, EpochSummary s) {
        if (progress != null) {
            progress.close();
            progress = null;
        }
        String val = s.val() == null ? (ctx.hasValidation() ? "not validated (val_every "
                + ctx.settings().valEvery() + ")" : "no validation data")
                : String.format(Locale.ROOT, "val_loss %.4f  top1 %.2f%%  top%d %.2f%%", s.val().loss(),
                        100 * s.val().top1(), s.val().topK(), 100 * s.val().top5());
        out.printf(Locale.ROOT, "epoch %d: train_loss %.4f  %s  lr %.3g  %.1f s  %.0f img/s%s%n", s.epoch(),
                s.trainLoss(), val, s.lr(), s.seconds(), s.imagesPerSecond(),
                s.featureCache() ? "  (feature cache)" : "");
        out.flush();
    }

    @Override
    public void onTrainEnd(TrainContext ctx) {
        if (ctx.stopReason() != null) {
            out.println(ctx.stopReason());
        }
        out.printf(Locale.ROOT, "frozen tensors bit-identical after training: %d checked%n", ctx.frozenVerified());
        if (!ctx.data().skipped().files().isEmpty()) {
            out.printf(Locale.ROOT, "skipped %d unreadable images (listed in summary.json)%n",
                    ctx.data().skipped().count());
        }
        out.flush();
    }
}
