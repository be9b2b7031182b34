package dev.finetune.metrics;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The standard row the training loop logs after each epoch. {@link MetricsLog#append(Record)} writes the scalar
 * fields as {@code metrics.csv} columns (named in snake_case: {@code train_loss}, {@code val_top1}, ...) and all
 * fields, including the per-class map and the confusion matrix, to {@code metrics.jsonl}.
 *
 * @param epoch the 1-based epoch number
 * @param trainLoss mean training loss
 * @param valLoss mean validation loss; NaN when the epoch was not validated
 * @param valTop1 validation top-1 accuracy as a fraction; NaN when not validated
 * @param valTop5 validation top-5 accuracy (top-min(5, classes)) as a fraction; NaN when not validated
 * @param valMacroF1 validation macro-averaged F1 (scikit-learn's, zero_division=0); NaN when not validated
 * @param lr the base learning rate at the end of the epoch ({@code optimizer.lr} under the schedule)
 * @param epochSeconds wall-clock time of the epoch including validation
 * @param imagesPerSecond training throughput
 * @param trainableParams how many parameters were trainable during the epoch (changes when layers are unfrozen)
 * @param perClassAccuracy validation accuracy by class name; NaN for a class without validation samples; empty when
 *     not validated
 * @param confusionMatrix validation confusion matrix (rows true, columns predicted); null when not validated
 * @param perClass validation precision, recall, F1 and support by class name; empty when not validated (JSONL only)
 * @param averages their macro and weighted averages; null when not validated (JSONL only)
 * @param lrByGroup the learning rate of each optimizer group at the end of the epoch ({@code base},
 *     {@code optimizer.groups[0]}, {@code train.unfreeze[0]} ...); JSONL only
 * @param ema validation of the weight EMA ({@code val_loss}, {@code val_top1}, {@code val_macro_f1}); empty without
 *     an EMA; JSONL only
 */
public record EpochRow(
        int epoch,
        double trainLoss,
        double valLoss,
        double valTop1,
        double valTop5,
        double valMacroF1,
        double lr,
        double epochSeconds,
        double imagesPerSecond,
        long trainableParams,
        Map<String, Double> perClassAccuracy,
        long[][] confusionMatrix,
        Map<String, ClassScores> perClass,
        ClassScores.Averages averages,
        Map<String, Double> lrByGroup,
        Map<String, Double> ema) {

    /** Copies the map and matrix so the row cannot change after it is built. */
    public EpochRow {
        perClassAccuracy = perClassAccuracy == null
                ? Map.of()
                : java.util.Collections.unmodifiableMap(new LinkedHashMap<>(perClassAccuracy));
        if (confusionMatrix != null) {
            long[][] copy = new long[confusionMatrix.length][];
            for (int i = 0; i < copy.length; i++) {
                copy[i] = confusionMatrix[i].clone();
            }
            confusionMatrix = copy;
        }
        perClass = perClass == null ? Map.of()
                : java.util.Collections.unmodifiableMap(new LinkedHashMap<>(perClass));
        lrByGroup = lrByGroup == null ? Map.of() : java.util.Collections.unmodifiableMap(new LinkedHashMap<>(lrByGroup));
        ema = ema == null ? Map.of() : java.util.Collections.unmodifiableMap(new LinkedHashMap<>(ema));
    }

    /**
     * Builds the row from the epoch's measurements.
     *
     * @param validation the validation metrics, or null when this epoch was not validated
     * @param classNames the class names in label order, used as the keys of {@code per_class_accuracy}
     */
    public static EpochRow of(int epoch, double trainLoss, EpochMetrics validation, List<String> classNames,
            double lr, double epochSeconds, double imagesPerSecond, long trainableParams) {
        return of(epoch, trainLoss, validation, classNames, lr, epochSeconds, imagesPerSecond, trainableParams,
                Map.of());
    }

    /** {@link #of(int, double, EpochMetrics, List, double, double, double, long)} with each group's learning rate. */
    public static EpochRow of(int epoch, double trainLoss, EpochMetrics validation, List<String> classNames,
            double lr, double epochSeconds, double imagesPerSecond, long trainableParams,
            Map<String, Double> lrByGroup) {
        if (validation == null) {
            return new EpochRow(epoch, trainLoss, Double.NaN, Double.NaN, Double.NaN, Double.NaN, lr, epochSeconds,
                    imagesPerSecond, trainableParams, Map.of(), null, Map.of(), null, lrByGroup, Map.of());
        }
        ClassScores.Averages averages = validation.averages();
        return new EpochRow(epoch, trainLoss, validation.loss(), validation.top1(), validation.top5(),
                averages.macroF1(), lr, epochSeconds, imagesPerSecond, trainableParams,
                validation.perClassAccuracy(classNames), validation.confusion(), validation.classScores(classNames),
                averages, lrByGroup, Map.of());
    }

    /** This row with the weight EMA's validation ({@code null}: none). */
    public EpochRow withEma(EpochMetrics emaValidation) {
        if (emaValidation == null) {
            return this;
        }
        Map<String, Double> m = new LinkedHashMap<>();
        m.put("val_loss", emaValidation.loss());
        m.put("val_top1", emaValidation.top1());
        m.put("val_macro_f1", emaValidation.averages().macroF1());
        return new EpochRow(epoch, trainLoss, valLoss, valTop1, valTop5, valMacroF1, lr, epochSeconds,
                imagesPerSecond, trainableParams, perClassAccuracy, confusionMatrix, perClass, averages, lrByGroup, m);
    }

    /** A copy of the confusion matrix, or null when not validated. */
    @Override
    public long[][] confusionMatrix() {
        if (confusionMatrix == null) {
            return null;
        }
        long[][] copy = new long[confusionMatrix.length][];
        for (int i = 0; i < copy.length; i++) {
            copy[i] = confusionMatrix[i].clone();
        }
        return copy;
    }
}
