package dev.finetune.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.nn.Block;
import ai.djl.nn.Parameter;
import ai.djl.pytorch.engine.PtSymbolBlock;
import ai.djl.training.ParameterStore;
import dev.finetune.engine.Engines;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The trainable stages of a {@link ResNet} (any depth, ResNeXt, Wide ResNet) run forward with autograd as one
 * TorchScript call, in float32 or in bfloat16 mixed precision ({@code train.precision: bf16-mixed}):
 * {@code resnet_train.pt}, made by {@code scripts/torchscript/make_resnet_train_runner.py}, a small interpreter over a
 * program of ints recorded here from the model. It holds no weights and no model code: the parameters and running
 * statistics are arguments, so gradients reach the model's own parameters and BatchNorm updates its own statistics.
 *
 * <p>Why a TorchScript file rather than DJL ops: DJL 0.36's JNI cannot hold a bfloat16 tensor ({@code toType(BFLOAT16)}
 * aborts the process), so mixed precision cannot be written with NDArrays. In bf16 the script does what PyTorch 1.13's
 * {@code torch.autocast("cpu", dtype=torch.bfloat16)} does to torchvision's ResNet — convolutions and the final Linear
 * cast input and weights to bf16; BatchNorm (float32 affine parameters and statistics), max-pool, ReLU, the residual
 * add and the average pool run on the bf16 activations; the logits come back as float32 — and bit-equal to it in
 * PyTorch 1.13 (checked by the generator's author and by {@code ResNetTrainScriptTest} within bf16's rounding on this
 * engine's libtorch). In float32 it runs the same ops as the Java blocks.
 *
 * <p>How it is called: through {@link PtSymbolBlock#forward(ParameterStore, NDList, boolean)} with training on, the
 * one DJL entry that runs a TorchScript method outside inference mode (so autograd records it); DJL groups the NDArrays
 * named {@code params[]} and {@code stats[]} into list arguments, so the parameters' names are set to those each call.
 *
 * <p>NCHW only: channels-last bf16 steps were 5–10 % faster in one JVM alternating the two (128×64, 374–425 against
 * 414–432 ms; PyTorch 1.13's autocast agrees within its noise), not enough for a second layout and its checks.
 */
public final class ResNetTrainScript implements AutoCloseable {
    private static final String RESOURCE = "resnet_train.pt";
    /** Program ops (see the generator's docstring). */
    private static final long CONV = 0;
    private static final long BN = 1;
    private static final long MAX_POOL = 2;
    private static final long SAVE = 3;
    private static final long CONV_RESIDUAL = 4;
    private static final long BN_RESIDUAL = 5;
    private static final long ADD_RELU = 6;
    private static final long HEAD = 7;

    private final ResNet model;
    private final PtSymbolBlock module;
    private final ParameterStore ps;
    private final Map<Integer, Program> programs = new HashMap<>();

    /**
     * A recorded program for one first stage: the ints (header and BN flags filled per call), the tensors it indexes,
     * and the BatchNorm layers whose train flag sits at {@code flagAt[i]}.
     */
    private record Program(long[] code, List<Parameter> params, List<Parameter> stats, List<BatchNorm2d> bns,
            int[] flagAt, double momentum, double eps, Linear head) {}

    public ResNetTrainScript(ResNet model, NDManager manager) {
        this.model = model;
        this.ps = new ParameterStore(manager, false);
        this.module = Engines.loadScript(ResNetTrainScript.class, RESOURCE, manager);
    }

    /**
     * Why stages {@code [fromStage, end)} of {@code model} cannot run here, or null if they can: the script covers
     * input from the stem to layer4 (not the head alone), float32 parameters, and BatchNorm layers that share one eps
     * and one momentum (torchvision's ResNets do) and are not in cumulative mode.
     */
    public static String whyUnsupported(ResNet model, int fromStage) {
        if (fromStage < 0 || fromStage > 4) {
            return "it covers steps that start at the stem or a layer, and this one trains only the head (a few"
                    + " milliseconds in float32)";
        }
        Double eps = null;
        Double momentum = null;
        for (Network.NamedBatchNorm n : model.batchNorms()) {
            if (model.stageIndexOf(n.name()) < fromStage) {
                continue;
            }
            BatchNorm2d bn = n.bn();
            if (bn.cumulative()) {
                return n.name() + " averages its statistics cumulatively (BN recalibration)";
            }
            if (eps == null) {
                eps = (double) bn.eps();
                momentum = bn.opMomentum();
            } else if (eps != bn.eps() || momentum != bn.opMomentum()) {
                return n.name() + " has eps " + bn.eps() + " / momentum " + bn.opMomentum() + ", unlike the others";
            }
        }
        for (Parameter p : model.namedTensors().values()) {
            if (p.getArray().getDataType() != DataType.FLOAT32) {
                return p.getName() + " is " + p.getArray().getDataType() + ", not float32";
            }
        }
        return null;
    }

    /**
     * Stages {@code [fromStage, end)} on {@code x} with autograd (the caller's gradient collector records it): float32
     * logits on {@code x}'s manager. BatchNorm layers in {@link BnMode#TRAIN} use batch statistics and update their
     * running ones when {@code training}; dropout before the head is on when {@code training}.
     *
     * @param bf16 bfloat16 mixed precision (as {@code torch.autocast}); float32 otherwise
     * @throws IllegalStateException if {@link #whyUnsupported} says why not
     */
    public NDArray forward(NDArray x, int fromStage, boolean training, boolean bf16) {
        Program p = programs.get(fromStage);
        if (p == null || p.head() != model.head()) { // a replaced head (model.fc = ...) is recorded anew
            String why = whyUnsupported(model, fromStage);
            if (why != null) {
                throw new IllegalStateException("cannot run the training script: " + why);
            }
            p = record(fromStage);
            programs.put(fromStage, p);
        }
        long[] code = p.code().clone();
        code[0] = bf16 ? 1 : 0;
        code[1] = training ? 1 : 0;
        for (int i = 0; i < p.flagAt().length; i++) {
            code[p.flagAt()[i]] = p.bns().get(i).mode() == BnMode.TRAIN ? 1 : 0;
        }
        NDManager m = x.getManager();
        NDList in = new NDList();
        x.setName("x");
        in.add(x);
        for (Parameter t : p.params()) {
            NDArray a = t.getArray();
            a.setName("params[]");
            in.add(a);
        }
        for (Parameter t : p.stats()) {
            NDArray a = t.getArray();
            a.setName("stats[]");
            in.add(a);
        }
        try (NDArray program = m.create(code); NDArray scalars = m.create(
                new double[] {p.momentum(), p.eps(), model.dropout()})) {
            program.setName("code");
            scalars.setName("scalars");
            in.add(program);
            in.add(scalars);
            NDArray out = module.forward(ps, in, true).singletonOrThrow();
            out.attach(m);
            if (training) {
                for (BatchNorm2d bn : p.bns()) {
                    if (bn.mode() == BnMode.TRAIN) {
                        bn.countBatch();
                    }
                }
            }
            return out;
        }
    }

    private Program record(int fromStage) {
        Map<String, Block> modules = model.namedModules();
        List<Long> code = new ArrayList<>(List.of(0L, 0L));
        List<Parameter> params = new ArrayList<>();
        List<Parameter> stats = new ArrayList<>();
        List<BatchNorm2d> bns = new ArrayList<>();
        List<Integer> flagAt = new ArrayList<>();
        double[] bnConstants = new double[2];
        class Recorder {
            void conv(String name, long op) {
                Conv2d c = (Conv2d) modules.get(name);
                if (c.bias() != null) {
                    throw new IllegalStateException(name + " has a bias; ResNet convolutions have none");
                }
                code.addAll(List.of(op, (long) params.size(), (long) c.stride(), (long) c.padding(),
                        (long) c.groups()));
                params.add(c.weight());
            }

            void bn(String name, long op, boolean relu) {
                BatchNorm2d b = (BatchNorm2d) modules.get(name);
                code.addAll(List.of(op, (long) params.size(), (long) stats.size()));
                params.add(b.weight());
                params.add(b.bias());
                stats.add(b.runningMean());
                stats.add(b.runningVar());
                flagAt.add(code.size());
                code.add(0L);
                if (op == BN) {
                    code.add(relu ? 1L : 0L);
                }
                bns.add(b);
                bnConstants[0] = b.opMomentum();
                bnConstants[1] = b.eps();
            }
        }
        Recorder r = new Recorder();
        if (fromStage == 0) {
            r.conv("conv1", CONV);
            r.bn("bn1", BN, true);
            code.add(MAX_POOL);
        }
        for (int s = Math.max(1, fromStage); s <= 4; s++) {
            Sequential layer = model.layer(s);
            for (int u = 0; u < layer.size(); u++) {
                String unit = "layer" + s + "." + u + ".";
                int convs = modules.containsKey(unit + "conv3") ? 3 : 2;
                code.add(SAVE);
                for (int k = 1; k <= convs; k++) {
                    r.conv(unit + "conv" + k, CONV);
                    r.bn(unit + "bn" + k, BN, k < convs);
                }
                if (modules.containsKey(unit + "downsample")) {
                    r.conv(unit + "downsample.0", CONV_RESIDUAL);
                    r.bn(unit + "downsample.1", BN_RESIDUAL, false);
                }
                code.add(ADD_RELU);
            }
        }
        Linear head = model.head();
        code.addAll(List.of(HEAD, (long) params.size()));
        params.add(head.weight());
        params.add(head.bias());
        return new Program(code.stream().mapToLong(Long::longValue).toArray(), List.copyOf(params),
                List.copyOf(stats), List.copyOf(bns), flagAt.stream().mapToInt(Integer::intValue).toArray(),
                bnConstants[0], bnConstants[1], head);
    }

    @Override
    public void close() {
        module.close();
    }
}
