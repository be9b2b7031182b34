package dev.finetune.export;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.finetune.Versions;
import dev.finetune.export.onnx.OnnxProto.ModelProto;
import dev.finetune.io.AtomicFiles;
import dev.finetune.model.Network;
import dev.finetune.predict.TrainedModel;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * {@code finetune export --format onnx}: the model file ({@link OnnxGraph}) with the class names and preprocessing in
 * its metadata, and a sidecar that says how to run it with ONNX Runtime in Python and in Java.
 */
final class OnnxExport {
    private static final ObjectMapper JSON = new ObjectMapper();

    private OnnxExport() {}

    /**
     * Writes the model file and adds its ONNX entries (input and output, ONNX Runtime recipes) to the sidecar map the
     * {@link Exporter} writes.
     */
    static void write(TrainedModel model, Path out, Exporter.OnnxOptions options, Map<String, Object> preprocessing,
            Map<String, Object> side) {
        Network net = model.model();
        var p = model.preprocessing();
        int size = p.imageSize();
        Map<String, String> metadata = new LinkedHashMap<>();
        metadata.put("arch", net.arch().configName());
        metadata.put("class_names", json(model.classNames()));
        metadata.put("preprocessing", json(preprocessing));
        metadata.put("input", options.normalizeInGraph()
                ? "RGB pixel values in [0, 255] (float32) after resize and crop; normalized in the graph"
                : "RGB (float32), resized, cropped and normalized as 'preprocessing' says");
        metadata.put("exported_by", "finetune " + Versions.toolkit());
        ModelProto proto = OnnxGraph.build(net, new OnnxGraph.Spec(size, options.dynamicBatch(),
                options.normalizeInGraph() ? p.mean() : null, options.normalizeInGraph() ? p.std() : null, metadata,
                Versions.toolkit()));
        AtomicFiles.write(out, proto::writeTo);

        String file = out.getFileName().toString();
        String batch = options.dynamicBatch() ? "N" : "1";
        Map<String, Object> onnx = new LinkedHashMap<>();
        onnx.put("opset", OnnxGraph.OPSET);
        onnx.put("ir_version", OnnxGraph.IR_VERSION);
        onnx.put("input", "input: float32 [" + batch + ", 3, " + size + ", " + size + "]");
        onnx.put("output", "logits: float32 [" + batch + ", " + model.classNames().size() + "]");
        onnx.put("dynamic_batch", options.dynamicBatch());
        onnx.put("normalize_in_graph", options.normalizeInGraph());
        side.put("onnx", onnx);
        String recipe = options.normalizeInGraph()
                ? "transforms.Compose([transforms.Resize(" + p.resize() + "), transforms.CenterCrop(" + size
                        + "), transforms.PILToTensor()])(PIL.Image.open(f).convert(\"RGB\")).float()"
                : p.toTransformSpec().torchvisionEvalRecipe();
        side.put("run_in_python", "import onnxruntime, PIL.Image; from torchvision import transforms; "
                + "s = onnxruntime.InferenceSession('" + file + "', providers=['CPUExecutionProvider']); "
                + "x = " + recipe + ".unsqueeze(0).numpy(); logits = s.run(['logits'], {'input': x})[0]");
        side.put("run_in_java", "// com.microsoft.onnxruntime:onnxruntime; pixels: float[3*" + size + "*" + size
                + "] in CHW order, preprocessed as above" + (options.normalizeInGraph() ? " (values 0-255)" : "")
                + "\nOrtEnvironment env = OrtEnvironment.getEnvironment();\n"
                + "try (OrtSession s = env.createSession(\"" + file + "\", new OrtSession.SessionOptions());\n"
                + "     OnnxTensor x = OnnxTensor.createTensor(env, FloatBuffer.wrap(pixels), new long[] {1, 3, "
                + size + ", " + size + "});\n"
                + "     OrtSession.Result r = s.run(Map.of(\"input\", x))) {\n"
                + "    float[][] logits = (float[][]) r.get(0).getValue();\n}");
    }

    private static String json(Object o) {
        try {
            return JSON.writeValueAsString(o);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }
}
