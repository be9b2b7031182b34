package dev.finetune.model;

import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.AbstractBlock;
import ai.djl.nn.Block;
import ai.djl.nn.Parameter;
import ai.djl.util.Pair;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A DJL block that names its children and parameters the way a PyTorch {@code nn.Module} does, so that the dotted
 * path of every tensor is its torchvision state_dict key ({@code layer2.0.downsample.1.running_var}).
 *
 * <p>DJL's {@code addChildBlock} prefixes a counter ({@code 01Conv2d}) and joins paths with {@code _}, which collides
 * with names such as {@code running_mean}; we add children to the protected list under their bare names and walk the
 * tree ourselves. All parameter shapes are fixed at construction (a ResNet's shapes do not depend on the input), so
 * initialization needs no shape inference.
 */
public abstract class TorchModule extends AbstractBlock {

    /** Adds a child under its PyTorch attribute name ({@code conv1}, {@code 0}, {@code downsample}). */
    protected final <B extends Block> B child(String name, B block) {
        children.add(name, block);
        return block;
    }

    /** Replaces a child in place, keeping its position (used to swap the classifier head). */
    protected final <B extends Block> B replaceChild(String name, B block) {
        int index = children.indexOf(name);
        if (index < 0) {
            throw new IllegalArgumentException("no child named " + name);
        }
        children.remove(index);
        children.add(index, name, block);
        return block;
    }

    /** Adds a parameter whose shape is known now. */
    protected final Parameter param(String name, Parameter.Type type, Shape shape, boolean requiresGrad) {
        return addParameter(
                Parameter.builder()
                        .setName(name)
                        .setType(type)
                        .optShape(shape)
                        .optRequiresGrad(requiresGrad)
                        .build());
    }

    /**
     * Every parameter and buffer below this module in PyTorch's state_dict order, keyed by the dotted name
     * (parameters of a module before those of its children, as {@code nn.Module.state_dict} orders them).
     */
    public final Map<String, Parameter> namedTensors() {
        Map<String, Parameter> out = new LinkedHashMap<>();
        collect("", this, out);
        return out;
    }

    /** The named direct and nested child modules, {@code ""} for this one, in definition order. */
    public final Map<String, Block> namedModules() {
        Map<String, Block> out = new LinkedHashMap<>();
        collectModules("", this, out);
        return out;
    }

    private static void collect(String prefix, Block block, Map<String, Parameter> out) {
        for (Pair<String, Parameter> p : block.getDirectParameters()) {
            out.put(prefix + p.getKey(), p.getValue());
        }
        for (Pair<String, Block> c : block.getChildren()) {
            collect(prefix + c.getKey() + ".", c.getValue(), out);
        }
    }

    private static void collectModules(String prefix, Block block, Map<String, Block> out) {
        out.put(prefix.isEmpty() ? "" : prefix.substring(0, prefix.length() - 1), block);
        for (Pair<String, Block> c : block.getChildren()) {
            collectModules(prefix + c.getKey() + ".", c.getValue(), out);
        }
    }

    @Override
    protected void initializeChildBlocks(NDManager manager, DataType dataType, Shape... inputShapes) {
        Shape[] shapes = inputShapes;
        for (Block c : children.values()) {
            c.initialize(manager, dataType, shapes);
            shapes = c.getOutputShapes(shapes);
        }
    }

    /**
     * Describes this module's eval-mode forward to {@code g} (the ONNX export): {@code prefix} is this module's
     * state_dict prefix ({@code layer1.0.}), {@code x} its input; returns its output. Eval mode: batch norm uses its
     * running statistics, dropout and stochastic depth are the identity.
     */
    public GraphSink.Value trace(GraphSink g, String prefix, GraphSink.Value x) {
        throw new UnsupportedOperationException(getClass().getSimpleName() + " has no graph form for export");
    }

    /** {@link #trace} of the child named {@code name}. */
    protected final GraphSink.Value traceChild(GraphSink g, String prefix, String name, GraphSink.Value x) {
        return ((TorchModule) children.get(name)).trace(g, prefix + name + ".", x);
    }

    /** {@code x}'s successor named {@code name}, with this module's output shape for input {@code x}. */
    protected final GraphSink.Value output(String name, GraphSink.Value x) {
        return new GraphSink.Value(name, getOutputShapes(new Shape[] {x.shape()})[0]);
    }
}
