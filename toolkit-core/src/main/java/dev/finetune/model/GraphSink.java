package dev.finetune.model;

import ai.djl.ndarray.types.Shape;
import java.util.Map;

/**
 * Receives a network's inference graph node by node, in ONNX's operator vocabulary (opset 17), so that every module
 * describes its own eval-mode math next to its forward ({@link TorchModule#trace}); {@code export.onnx} turns what it
 * receives into an ONNX model. Eval mode throughout: batch norm uses its running statistics, dropout and stochastic
 * depth are the identity.
 */
public interface GraphSink {

    /** A value in the graph: its name and its shape with batch size 1 (the batch dimension may be symbolic). */
    record Value(String name, Shape shape) {
        public int rank() {
            return shape.dimension();
        }
    }

    /** The graph name of a state_dict tensor ({@code layer1.0.conv1.weight}), added as an initializer on first use. */
    String tensor(String key);

    /** A float32 constant of the given shape. */
    String constant(float[] values, long... dims);

    /** An int64 constant (shapes for Reshape, axes). */
    String constantLongs(long... values);

    /**
     * Adds one node with one output and returns the output's name. Attribute values: Integer or Long (INT), Float or
     * Double (FLOAT), int[] or long[] (INTS), String (STRING).
     */
    String op(String type, Map<String, Object> attributes, String... inputs);

    /** {@link #op(String, Map, String...)} without attributes. */
    default String op(String type, String... inputs) {
        return op(type, Map.of(), inputs);
    }
}
