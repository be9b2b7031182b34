package dev.finetune.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.engine.PtNDManager;
import ai.djl.pytorch.engine.PtSymbolBlock;
import ai.djl.pytorch.jni.IValue;
import ai.djl.pytorch.jni.JniUtils;
import dev.finetune.engine.Engines;
import java.util.List;

/**
 * A BN-folded ResNet prefix ({@link FoldedPrefix}) run as one TorchScript call: {@code folded_resnet.pt}, made by
 * {@code scripts/torchscript/make_folded_resnet_runner.py}, a small interpreter over the program of ints that
 * {@link FoldedPrefix#program()} records. It holds no weights and no model code: the folded weights are arguments.
 *
 * <p>Why hand-written rather than DJL ops: two things DJL 0.36's JNI cannot do. In bfloat16 ({@link Bf16Prefix}) it
 * cannot hold a bf16 tensor at all (converting one aborts the process). In float32 it has no in-place ReLU or add, and
 * each op's result lives until its NDArray is closed; inside the interpreter ReLU and the residual add run in place and
 * every intermediate is freed by libtorch's reference count the moment it is dead, as in PyTorch's eager ResNet — the
 * same convolutions (bit-equal outputs on this project's hosts), less memory traffic and one JNI call per batch.
 */
final class FoldedResNetScript implements AutoCloseable {
    private static final String RESOURCE = "folded_resnet.pt";

    private final PtSymbolBlock module;
    /** The folded weights and the program as TorchScript arguments, built once: every call passes the same ones. */
    private final IValue weights;
    private final IValue program;

    FoldedResNetScript(FoldedPrefix folded, NDManager manager) {
        List<FoldedConvBn> convs = folded.convolutions();
        PtNDArray[] tensors = new PtNDArray[2 * convs.size()];
        for (int i = 0; i < convs.size(); i++) {
            tensors[2 * i] = (PtNDArray) convs.get(i).weight();
            tensors[2 * i + 1] = (PtNDArray) convs.get(i).bias();
        }
        this.module = load(manager);
        this.weights = IValue.listFrom(tensors);
        this.program = IValue.listFrom(folded.program());
    }

    private static PtSymbolBlock load(NDManager manager) {
        return Engines.loadScript(FoldedResNetScript.class, RESOURCE, manager);
    }

    /**
     * The prefix on {@code x} (contiguous NCHW float32), unchecked; float32 contiguous NCHW out, on {@code x}'s
     * manager.
     *
     * @param bf16 compute in bfloat16 (weights and activations), float32 otherwise
     * @param layouts per folded convolution: 1 runs it on channels-last input, 0 on contiguous NCHW
     */
    NDArray run(NDArray x, boolean bf16, long[] layouts) {
        // The graph executor's optimizer (on by default, per thread) profiles the first calls and may then run a
        // rewritten graph, which the first-batch check would not have seen; off, every call runs the same ops.
        // The switch stays off on this thread for the toolkit's other TorchScript functions, which want it off as well
        // (ScriptedUpdate and MaxPoolIndices set it too).
        JniUtils.setGraphExecutorOptimize(false);
        try (IValue input = IValue.from((PtNDArray) x);
                IValue precision = IValue.from(bf16);
                IValue layout = IValue.listFrom(layouts);
                IValue out = module.forward(input, weights, program, precision, layout)) {
            // DJL runs a TorchScript method in libtorch's inference mode, and an inference tensor cannot be saved for
            // backward: a trainable stage after the prefix (last-stage fine-tuning) would fail on it. A copy made
            // outside inference mode is a normal tensor (the prefix's output is small: 6 MB for 32x224 at layer3).
            try (NDArray inference = out.toTensor((PtNDManager) x.getManager())) {
                return inference.duplicate();
            }
        }
    }

    @Override
    public void close() {
        weights.close();
        program.close();
        module.close();
    }
}
