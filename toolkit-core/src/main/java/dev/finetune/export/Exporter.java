package dev.finetune.export;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.finetune.ErrorKind;
import dev.finetune.FinetuneException;
import dev.finetune.Versions;
import dev.finetune.checkpoint.HostTensor;
import dev.finetune.checkpoint.PthWriter;
import dev.finetune.checkpoint.SafetensorsWriter;
import dev.finetune.io.AtomicFiles;
import dev.finetune.predict.TrainedModel;
import dev.finetune.weights.StateDicts;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Takes a model back to PyTorch: a torchvision state_dict as {@code .pth} (loads with
 * {@code torch.load(f, weights_only=True)} into {@code torchvision.models.resnet18(num_classes=N)}) or safetensors
 * (the same tensors under the same names), plus {@code FILE.json} beside it with the class names and the
 * preprocessing, including the torchvision code that reproduces the toolkit's input tensors exactly
 * ({@link dev.finetune.data.TransformSpec#torchvisionEvalRecipe()}).
 */
public final class Exporter {
    private Exporter() {}

    /** Export formats. */
    public enum Format {
        PTH, SAFETENSORS, ONNX;

        public static Format parse(String s) {
            return switch (s) {
                case "pth" -> PTH;
                case "safetensors" -> SAFETENSORS;
                case "onnx" -> ONNX;
                default -> throw new FinetuneException(ErrorKind.USAGE, "--format: choose pth, safetensors or onnx,"
                        + " found '" + s + "'");
            };
        }
    }

    /**
     * ONNX choices: a symbolic batch dimension ({@code dynamicBatch}, else batch 1), and the normalization as graph
     * ops ({@code normalizeInGraph}: the input is then RGB in [0, 255] after resize and crop).
     */
    public record OnnxOptions(boolean dynamicBatch, boolean normalizeInGraph) {
        public static OnnxOptions defaults() {
            return new OnnxOptions(false, false);
        }
    }

    /** Writes the model (fp32) and its sidecar; returns the sidecar path. */
    public static Path export(TrainedModel model, Format format, Path out) {
        return export(model, format, out, "F32");
    }

    /**
     * Writes the model and its sidecar; {@code dtype} F16 halves a safetensors file (values rounded to half
     * precision; the loader converts back to fp32). Returns the sidecar path.
     */
    public static Path export(TrainedModel model, Format format, Path out, String dtype) {
        return export(model, format, out, dtype, false);
    }

    /**
     * {@link #export(TrainedModel, Format, Path, String)}; the output folder is created, and an existing model file or
     * sidecar is replaced only when {@code overwrite} (the CLI's {@code --force}).
     */
    public static Path export(TrainedModel model, Format format, Path out, String dtype, boolean overwrite) {
        return export(model, format, out, dtype, overwrite, OnnxOptions.defaults());
    }

    /** {@link #export(TrainedModel, Format, Path, String, boolean)} with the ONNX choices (used by ONNX only). */
    public static Path export(TrainedModel model, Format format, Path out, String dtype, boolean overwrite,
            OnnxOptions onnx) {
        if (format != Format.ONNX && !onnx.equals(OnnxOptions.defaults())) {
            throw new FinetuneException(ErrorKind.USAGE, "--dynamic-batch and --normalize-in-graph apply to --format"
                    + " onnx only");
        }
        Path sidecarPath = out.resolveSibling(out.getFileName() + ".json");
        for (Path f : List.of(out, sidecarPath)) {
            if (Files.exists(f) && !overwrite) {
                throw new FinetuneException(ErrorKind.OUTPUT, f + " already exists; choose another --out, or add"
                        + " --force to replace it");
            }
        }
        try {
            Path parent = out.toAbsolutePath().getParent();
            if (parent != null) {
                Files.createDirectories(parent);
            }
        } catch (IOException e) {
            throw new FinetuneException(ErrorKind.OUTPUT, "cannot create the folder of " + out + ": " + e, e);
        }
        if (dtype.equals("F16") && format != Format.SAFETENSORS) {
            // ONNX here is opset 17 float32, as ONNX Runtime's CPU kernels expect.
            throw new FinetuneException(ErrorKind.USAGE, "--dtype f16 works with --format safetensors only; --format "
                    + format.name().toLowerCase(java.util.Locale.ROOT) + " is written in f32");
        }
        if (!dtype.equals("F32") && !dtype.equals("F16")) {
            throw new FinetuneException(ErrorKind.USAGE, "--dtype must be f32 or f16 (safetensors only), found "
                    + dtype.toLowerCase(java.util.Locale.ROOT));
        }
        var p = model.preprocessing();
        Map<String, Object> prep = new LinkedHashMap<>();
        prep.put("resize_shorter_side", p.resize());
        prep.put("center_crop", p.imageSize());
        prep.put("mean", p.mean());
        prep.put("std", p.std());
        // The exact recipe: this pipeline on PIL gives the tensor `finetune predict` feeds the model, bit for bit.
        prep.put("interpolation", p.toTransformSpec().interpolation().configName() + " (Pillow, on uint8)");
        prep.put("torchvision", p.toTransformSpec().torchvisionEvalRecipe());
        prep.put("torchvision_imports", "import PIL.Image; from torchvision import transforms");
        Map<String, Object> side = new LinkedHashMap<>();
        side.put("format_version", 1);
        side.put("weights", out.getFileName().toString());
        side.put("format", format.name().toLowerCase());
        side.put("dtype", dtype);
        side.put("arch", model.model().arch().configName());
        side.put("num_classes", model.classNames().size());
        side.put("class_names", model.classNames());
        side.put("preprocessing", prep);
        if (format == Format.ONNX) {
            OnnxExport.write(model, out, onnx, prep, side);
        } else {
            writeStateDict(model, format, out, dtype, side);
        }
        side.put("source", model.source().toString());
        side.put("versions", Versions.all());
        try {
            byte[] json = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValueAsBytes(side);
            AtomicFiles.write(sidecarPath, o -> o.write(json));
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
        return sidecarPath;
    }

    /** The state_dict as .pth or safetensors, and how to load it in Python into the sidecar map. */
    private static void writeStateDict(TrainedModel model, Format format, Path out, String dtype,
            Map<String, Object> side) {
        LinkedHashMap<String, HostTensor> sd = StateDicts.export(model.model());
        if (format == Format.PTH) {
            PthWriter.write(out, sd);
        } else {
            Map<String, String> md = new LinkedHashMap<>();
            md.put("arch", model.model().arch().configName());
            md.put("exported_by", "finetune " + Versions.toolkit());
            SafetensorsWriter.write(out, sd, md, dtype);
        }
        String build = "m = torchvision.models." + model.model().arch().configName() + "(num_classes="
                + model.classNames().size() + "); ";
        side.put("load_in_python", format == Format.PTH
                ? build + "m.load_state_dict(torch.load('" + out.getFileName() + "', weights_only=True))"
                : "from safetensors.torch import load_file; " + build + "m.load_state_dict(load_file('"
                        + out.getFileName() + "'))");
    }
}
