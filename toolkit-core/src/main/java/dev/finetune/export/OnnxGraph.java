package dev.finetune.export;

import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Parameter;
import com.google.protobuf.ByteString;
import dev.finetune.export.onnx.OnnxProto.AttributeProto;
import dev.finetune.export.onnx.OnnxProto.GraphProto;
import dev.finetune.export.onnx.OnnxProto.ModelProto;
import dev.finetune.export.onnx.OnnxProto.NodeProto;
import dev.finetune.export.onnx.OnnxProto.OperatorSetIdProto;
import dev.finetune.export.onnx.OnnxProto.StringStringEntryProto;
import dev.finetune.export.onnx.OnnxProto.TensorProto;
import dev.finetune.export.onnx.OnnxProto.TensorShapeProto;
import dev.finetune.export.onnx.OnnxProto.TypeProto;
import dev.finetune.export.onnx.OnnxProto.ValueInfoProto;
import dev.finetune.model.GraphSink;
import dev.finetune.model.Network;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;

/**
 * An ONNX model (IR 8, opset 17, float32) built from a network's own trace ({@link Network#trace}): every module
 * describes its eval-mode math, this class turns it into the official protobuf messages (compiled by protoc from
 * {@code src/main/proto/onnx/onnx.proto}). Initializers keep their torchvision state_dict names, so the file reads like
 * the PyTorch model in a viewer such as Netron.
 */
public final class OnnxGraph implements GraphSink {
    public static final int OPSET = 17;
    public static final long IR_VERSION = 8;
    /** Protobuf messages cannot exceed 2 GiB; ONNX's external-data files are not written here. */
    private static final long MAX_BYTES = (2L << 30) - (64L << 20);

    private final Map<String, Parameter> tensors;
    private final GraphProto.Builder graph = GraphProto.newBuilder();
    private final Set<String> added = new HashSet<>();
    private long bytes;
    private int counter;

    private OnnxGraph(Map<String, Parameter> tensors) {
        this.tensors = tensors;
    }

    /** What a model needs besides the network: its input size, batch and metadata. */
    public record Spec(int imageSize, boolean dynamicBatch, float[] normalizeMean, float[] normalizeStd,
            Map<String, String> metadata, String producerVersion) {}

    /**
     * The ONNX model of {@code net} for (N, 3, S, S) float32 images, N symbolic ("batch") when {@code dynamicBatch}
     * else 1; with {@code normalizeMean} set, the graph takes pixel values in [0, 255] and applies
     * {@code (x / 255 - mean) / std} itself (the resize and crop stay outside: they depend on the image library).
     */
    public static ModelProto build(Network net, Spec spec) {
        OnnxGraph g = new OnnxGraph(net.namedTensors());
        int s = spec.imageSize();
        GraphSink.Value x = new GraphSink.Value("input", new Shape(1, 3, s, s));
        if (spec.normalizeMean() != null) {
            String scaled = g.op("Div", "input", g.constant(new float[] {255f}));
            String centered = g.op("Sub", scaled, g.constant(spec.normalizeMean(), 1, 3, 1, 1));
            x = new GraphSink.Value(g.op("Div", centered, g.constant(spec.normalizeStd(), 1, 3, 1, 1)), x.shape());
        }
        GraphSink.Value y = net.trace(g, "", x);
        g.rename(y.name(), "logits");
        g.graph.setName(net.arch().configName());
        g.graph.addInput(valueInfo("input", spec.dynamicBatch(), 3, s, s));
        g.graph.addOutput(valueInfo("logits", spec.dynamicBatch(), y.shape().get(1)));
        ModelProto.Builder m = ModelProto.newBuilder()
                .setIrVersion(IR_VERSION)
                .setProducerName("finetune")
                .setProducerVersion(spec.producerVersion())
                .setDocString("torchvision " + net.arch().configName() + " with " + net.numClasses()
                        + " classes, exported by finetune; input: float32 (N, 3, " + s + ", " + s + ") RGB"
                        + (spec.normalizeMean() != null ? " in [0, 255], normalized in the graph"
                                : " normalized with the metadata's mean and std"))
                .addOpsetImport(OperatorSetIdProto.newBuilder().setDomain("").setVersion(OPSET))
                .setGraph(g.graph);
        spec.metadata().forEach((k, v) -> m.addMetadataProps(StringStringEntryProto.newBuilder().setKey(k).setValue(v)));
        return m.build();
    }

    @Override
    public String tensor(String key) {
        Parameter p = tensors.get(key);
        if (p == null) {
            throw new IllegalStateException("the trace asks for " + key + ", which the network does not have");
        }
        if (added.add(key)) {
            graph.addInitializer(floats(key, p.getArray().toFloatArray(), p.getArray().getShape().getShape()));
        }
        return key;
    }

    @Override
    public String constant(float[] values, long... dims) {
        String name = "const_" + counter++;
        graph.addInitializer(floats(name, values, dims.length == 0 ? new long[] {values.length} : dims));
        return name;
    }

    @Override
    public String constantLongs(long... values) {
        String name = "const_" + counter++;
        ByteBuffer b = ByteBuffer.allocate(8 * values.length).order(ByteOrder.LITTLE_ENDIAN);
        for (long v : values) {
            b.putLong(v);
        }
        graph.addInitializer(TensorProto.newBuilder().setName(name).setDataType(TensorProto.DataType.INT64_VALUE)
                .addDims(values.length).setRawData(ByteString.copyFrom(b.array())));
        return name;
    }

    @Override
    public String op(String type, Map<String, Object> attributes, String... inputs) {
        int id = counter++;
        String out = type + "_" + id;
        NodeProto.Builder n = NodeProto.newBuilder().setOpType(type).setName(type + "_" + id + "_node").addOutput(out);
        for (String in : inputs) {
            n.addInput(in);
        }
        // Sorted, so that the same network always gives the same bytes.
        new java.util.TreeMap<>(attributes).forEach((k, v) -> n.addAttribute(attribute(k, v)));
        graph.addNode(n);
        return out;
    }

    private void rename(String from, String to) {
        for (int i = graph.getNodeCount() - 1; i >= 0; i--) {
            NodeProto.Builder n = graph.getNodeBuilder(i);
            for (int o = 0; o < n.getOutputCount(); o++) {
                if (n.getOutput(o).equals(from)) {
                    n.setOutput(o, to);
                    return;
                }
            }
        }
        // The output is the input or an initializer (no node made it): an Identity names it.
        graph.addNode(NodeProto.newBuilder().setOpType("Identity").setName("logits_node").addInput(from).addOutput(to));
    }

    private TensorProto floats(String name, float[] values, long[] dims) {
        bytes += 4L * values.length;
        if (bytes > MAX_BYTES) {
            throw new IllegalStateException("the model's weights exceed the 2 GiB a single ONNX protobuf file can hold");
        }
        ByteBuffer b = ByteBuffer.allocate(4 * values.length).order(ByteOrder.LITTLE_ENDIAN);
        b.asFloatBuffer().put(values);
        TensorProto.Builder t = TensorProto.newBuilder().setName(name).setDataType(TensorProto.DataType.FLOAT_VALUE);
        for (long d : dims) {
            t.addDims(d);
        }
        return t.setRawData(ByteString.copyFrom(b.array())).build();
    }

    private static AttributeProto attribute(String name, Object v) {
        AttributeProto.Builder a = AttributeProto.newBuilder().setName(name);
        if (v instanceof Integer || v instanceof Long) {
            a.setType(AttributeProto.AttributeType.INT).setI(((Number) v).longValue());
        } else if (v instanceof Float || v instanceof Double) {
            a.setType(AttributeProto.AttributeType.FLOAT).setF(((Number) v).floatValue());
        } else if (v instanceof long[] l) {
            a.setType(AttributeProto.AttributeType.INTS);
            for (long x : l) {
                a.addInts(x);
            }
        } else if (v instanceof int[] l) {
            a.setType(AttributeProto.AttributeType.INTS);
            for (int x : l) {
                a.addInts(x);
            }
        } else if (v instanceof String s) {
            a.setType(AttributeProto.AttributeType.STRING).setS(ByteString.copyFromUtf8(s));
        } else {
            throw new IllegalArgumentException("attribute " + name + ": unsupported value " + v);
        }
        return a.build();
    }

    private static ValueInfoProto valueInfo(String name, boolean dynamicBatch, long... rest) {
        TensorShapeProto.Builder shape = TensorShapeProto.newBuilder();
        shape.addDim(dynamicBatch ? TensorShapeProto.Dimension.newBuilder().setDimParam("batch")
                : TensorShapeProto.Dimension.newBuilder().setDimValue(1));
        for (long d : rest) {
            shape.addDim(TensorShapeProto.Dimension.newBuilder().setDimValue(d));
        }
        return ValueInfoProto.newBuilder().setName(name).setType(TypeProto.newBuilder().setTensorType(
                TypeProto.Tensor.newBuilder().setElemType(TensorProto.DataType.FLOAT_VALUE).setShape(shape))).build();
    }
}
