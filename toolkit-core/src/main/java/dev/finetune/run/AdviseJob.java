package dev.finetune.run;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.finetune.advise.FreezeAdvisor;
import dev.finetune.advise.LinearProbe;
import dev.finetune.config.ConfigLoader;
import dev.finetune.config.ExperimentConfig;
import dev.finetune.io.AtomicFiles;
import dev.finetune.report.Plots;
import dev.finetune.train.FineTuner;
import dev.finetune.train.TrainingData;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * {@code finetune advise}: the freeze-depth advisor ({@link FreezeAdvisor}) on the config's model and data, on a
 * fine-tuner built for it and thrown away. Writes {@code advise.csv}, {@code advise.json} and {@code advise.png} into
 * its own folder; the config's run folder is never touched.
 */
public final class AdviseJob {
    private AdviseJob() {}

    /** The advice and where its files are. */
    public record Outcome(FreezeAdvisor.Advice advice, Path csv, Path json, Path plot) {}

    public static Outcome run(ConfigLoader.Loaded loaded, Path outDir, double tolerance, int timingSteps) {
        ExperimentConfig c = loaded.config();
        TrainingData data = Assembler.data(loaded);
        FreezeAdvisor.Advice a;
        try (FineTuner ft = Assembler.fineTuner(loaded, Assembler.checkpoint(loaded), data)) {
            a = FreezeAdvisor.advise(ft, data, c.train().batchSize(), c.optimizer().toSettings().lr(),
                    LinearProbe.defaults(), tolerance, timingSteps);
        }
        StringBuilder csv = new StringBuilder("frozen_through,feature_dim,trainable_parameters,probe_val_top1,"
                + "probe_train_top1,step_ms_images,step_ms_cached,recommended\n");
        for (int i = 0; i < a.cuts().size(); i++) {
            FreezeAdvisor.Cut k = a.cuts().get(i);
            csv.append(String.format(Locale.ROOT, "%s,%d,%d,%.6f,%.6f,%.3f,%.3f,%s%n", k.stage(), k.featureDim(),
                    k.trainableParameters(), k.probe().valAccuracy(), k.probe().trainAccuracy(), k.stepMsImages(),
                    k.stepMsCached(), i == a.recommended()));
        }
        csv.append(String.format(Locale.ROOT, "none,,%d,,,%.3f,%.3f,false%n", a.fullTrainableParameters(),
                a.fullStepMs(), a.fullStepMs()));
        Path csvFile = outDir.resolve("advise.csv");
        AtomicFiles.write(csvFile, out -> out.write(csv.toString().getBytes(StandardCharsets.UTF_8)));
        Path jsonFile = outDir.resolve("advise.json");
        byte[] json;
        try {
            json = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValueAsBytes(toMap(a));
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
        AtomicFiles.write(jsonFile, out -> out.write(json));
        Path plot = outDir.resolve("advise.png");
        List<String> names = new ArrayList<>();
        List<Double> acc = new ArrayList<>();
        List<Double> images = new ArrayList<>();
        List<Double> cached = new ArrayList<>();
        for (FreezeAdvisor.Cut k : a.cuts()) {
            names.add(k.stage());
            acc.add(100 * k.probe().valAccuracy());
            images.add(k.stepMsImages());
            cached.add(k.stepMsCached());
        }
        Plots.freezeAdvice(names, acc, images, cached, a.fullStepMs(), a.recommended(), plot);
        return new Outcome(a, csvFile, jsonFile, plot);
    }

    /** The advice as JSON-ready maps (also what {@code advise --json} prints). */
    public static Map<String, Object> toMap(FreezeAdvisor.Advice a) {
        Map<String, Object> m = new LinkedHashMap<>();
        List<Map<String, Object>> cuts = new ArrayList<>();
        for (FreezeAdvisor.Cut k : a.cuts()) {
            Map<String, Object> c = new LinkedHashMap<>();
            c.put("frozen_through", k.stage());
            c.put("feature_dim", k.featureDim());
            c.put("trainable_parameters", k.trainableParameters());
            c.put("probe_val_top1", k.probe().valAccuracy());
            c.put("probe_train_top1", k.probe().trainAccuracy());
            c.put("probe_train_loss", k.probe().trainLoss());
            c.put("step_ms_images", k.stepMsImages());
            c.put("step_ms_cached", k.stepMsCached());
            cuts.add(c);
        }
        m.put("cuts", cuts);
        m.put("full_finetune", Map.of("trainable_parameters", a.fullTrainableParameters(), "step_ms",
                a.fullStepMs()));
        m.put("recommended", a.recommendedCut().stage());
        m.put("verdict", a.verdict());
        m.put("tolerance", a.tolerance());
        m.put("validation", a.valSource());
        m.put("train_images", a.trainImages());
        m.put("val_images", a.valImages());
        m.put("batch_size", a.batchSize());
        m.put("image_size", a.imageSize());
        m.put("seconds", Map.of("features", a.featureSeconds(), "probes", a.probeSeconds(), "timing",
                a.timingSeconds()));
        return m;
    }
}
