package dev.finetune.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.nn.Block;
import ai.djl.nn.pooling.Pool;
import ai.djl.training.ParameterStore;
import dev.finetune.engine.Engines;
import java.util.List;

/**
 * torchvision's ResNet (and ResNeXt, Wide ResNet) as DJL blocks, parameter for parameter: the same modules, the same
 * names ({@code conv1}, {@code bn1}, {@code layer1}…{@code layer4}, {@code fc}), the same math (BN eps 1e-5, momentum
 * 0.1, max-pool 3/2/1, downsample only where the shape changes) and torchvision's initialization for training from
 * scratch.
 *
 * <p>Stages: {@code stem} (conv1+bn1+relu+maxpool), {@code layer1}…{@code layer4}, {@code head} (average pool and
 * {@code fc}).
 */
public final class ResNet extends Network {
    private static final List<String> STAGES = List.of("stem", "layer1", "layer2", "layer3", "layer4", "head");
    private static final List<List<String>> MODULES = List.of(
            List.of("conv1", "bn1"), List.of("layer1"), List.of("layer2"), List.of("layer3"), List.of("layer4"),
            List.of("fc"));

    private final Conv2d conv1;
    private final BatchNorm2d bn1;
    private final Sequential[] layers = new Sequential[4];

    private ResNet(ResNetArch arch, int numClasses) {
        super(arch, numClasses);
        conv1 = child("conv1", new Conv2d(3, 64, 7, 2, 3));
        bn1 = child("bn1", new BatchNorm2d(64));
        int inPlanes = 64;
        int[] units = arch.layers();
        for (int s = 0; s < 4; s++) {
            int planes = 64 << s;
            int stride = s == 0 ? 1 : 2;
            Block[] blocks = new Block[units[s]];
            for (int u = 0; u < units[s]; u++) {
                int st = u == 0 ? stride : 1;
                if (arch.bottleneck()) {
                    blocks[u] = new Bottleneck(inPlanes, planes, st, arch.groups(), arch.widthPerGroup());
                    inPlanes = planes * Bottleneck.EXPANSION;
                } else {
                    blocks[u] = new BasicBlock(inPlanes, planes, st);
                    inPlanes = planes * BasicBlock.EXPANSION;
                }
            }
            layers[s] = child("layer" + (s + 1), new Sequential(blocks));
        }
        child("fc", new Linear(arch.featureDim(), numClasses));
        declareStages(STAGES, MODULES);
    }

    /** A new, uninitialized network; call {@link #initialize(NDManager)} before use. */
    public static ResNet create(ResNetArch arch, int numClasses) {
        return new ResNet(arch, numClasses);
    }

    @Override
    public ResNet initialize(NDManager manager) {
        super.initialize(manager);
        return this;
    }

    @Override
    public ResNetArch arch() {
        return (ResNetArch) super.arch();
    }

    /** {@code layer1} … {@code layer4}. */
    public Sequential layer(int i) {
        return layers[i - 1];
    }

    @Override
    protected NDList runStage(int stage, ParameterStore ps, NDList x, boolean training) {
        switch (stage) {
            case 0: {
                NDList c = conv1.forward(ps, x, training);
                NDList y = StepScopes.release(c, bn1.forward(ps, c, training));
                // relu(maxpool(y)) instead of torchvision's maxpool(relu(y)): the same values, exactly (max and relu
                // are both monotone, so they commute), and the same gradients (the pool routes each window's gradient
                // to its maximum, which ReLU then passes or zeroes whichever comes first), but ReLU then runs on a
                // quarter of the values and allocates a quarter of the memory: our ReLU cannot be in place as
                // torchvision's is, and the stem's is the largest of the network. The folded path does the same.
                NDArray p = StepScopes.release(y.singletonOrThrow(),
                        MaxPoolIndices.maxPool2d(y.singletonOrThrow(), 3, 2, 1));
                return new NDList(StepScopes.release(p, Activation.relu(p)));
            }
            case 1:
            case 2:
            case 3:
            case 4:
                return layers[stage - 1].forward(ps, x, training);
            case 5: {
                NDArray f = x.singletonOrThrow();
                if (f.getShape().dimension() == 4) {
                    // adaptive_avg_pool2d((1, 1)) + flatten, as torchvision's avgpool/torch.flatten.
                    f = Pool.globalAvgPool2d(f).reshape(f.getShape().get(0), -1);
                }
                return headForward(ps, f, training);
            }
            default:
                throw new IllegalArgumentException("no stage " + stage);
        }
    }

    /** bn1, the stem's BatchNorm. */
    public BatchNorm2d stemNorm() {
        return bn1;
    }

    /**
     * Images per chunk for {@link #stemBackwardInChunks} so that one chunk's conv1 output (float32) is at most
     * {@code maxBytes}, the batch split evenly; the whole batch of {@code input} when it fits.
     */
    public int stemChunk(Shape input, long maxBytes) {
        Shape c = conv1.getOutputShapes(new Shape[] {input})[0];
        long n = input.get(0);
        long fit = Math.max(1, maxBytes / (c.size() / n * Float.BYTES));
        if (fit >= n) {
            return (int) n;
        }
        long chunks = (n + fit - 1) / fit;
        return (int) ((n + chunks - 1) / chunks);
    }

    /**
     * Back-propagates {@code upstream}, the gradient with respect to the stem's output for the batch {@code x}, into
     * conv1's and bn1's gradients, {@code chunk} images at a time: what backward through the stem's one graph adds to
     * them, with only one chunk's maps alive at once (at 32×224 the one graph's conv output, BatchNorm output, pool
     * indices and their gradients are about 600 MB). Moves no running statistics and counts no batch: the caller ran
     * the batch's forward. Autograd must be recording on this thread.
     *
     * <p>With bn1 on its running statistics every op is per image, so each chunk is the stem's own graph. With batch
     * statistics the batch is coupled through their mean and variance, and libtorch has no batch-norm backward over
     * pieces of a batch, so that part is written here: the statistics come from all chunks first (Chan's combination of
     * each chunk's mean and squared deviations, in double), each chunk's gradient at bn1's output dY from autograd
     * through the pool and ReLU, dβ = Σ dY and dγ = Σ dY·x̂ over the batch, and then each chunk's gradient at conv1's
     * output in BatchNorm's closed form, dC = γ·invstd·(dY − dβ/m − x̂·dγ/m), back-propagated through conv1. Equal to
     * the one graph's gradients up to float32 rounding ({@code StagewiseStepTest}). Each pass recomputes a chunk's
     * conv1 output (and the second its dY) rather than keep them: kept for the batch they are the maps this avoids.
     */
    public void stemBackwardInChunks(ParameterStore ps, NDArray x, NDArray upstream, int chunk) {
        long n = x.getShape().get(0);
        if (!bn1.updatesStatistics(true)) {
            for (long i = 0; i < n; i += chunk) {
                try (NDScope scope = new NDScope()) {
                    scope.suppressNotUsedWarning();
                    NDArray out = runStage(0, ps, new NDList(rows(x, i, chunk)), true).singletonOrThrow();
                    Engines.backward(out, rows(upstream, i, chunk));
                }
            }
            return;
        }
        int c = bn1.channels();
        // The batch's mean and biased variance of conv1's output, per channel.
        double count = 0;
        double[] mean = new double[c];
        double[] m2 = new double[c];
        for (long i = 0; i < n; i += chunk) {
            try (NDScope scope = new NDScope();
                    Engines.NoGrad g = Engines.noGrad()) {
                scope.suppressNotUsedWarning();
                g.getClass();
                NDArray conv = conv1.forward(ps, new NDList(rows(x, i, chunk)), true).singletonOrThrow();
                int[] axes = {0, 2, 3};
                double k = conv.getShape().size() / (double) c;
                NDArray mk = conv.sum(axes).div((float) k);
                float[] chunkMean = mk.toFloatArray();
                float[] chunkM2 = conv.sub(mk.reshape(1, c, 1, 1)).square().sum(axes).toFloatArray();
                for (int j = 0; j < c; j++) {
                    double delta = chunkMean[j] - mean[j];
                    mean[j] += delta * k / (count + k);
                    m2[j] += chunkM2[j] + delta * delta * count * k / (count + k);
                }
                count += k;
            }
        }
        float[] meanF = new float[c];
        float[] invstd = new float[c];
        for (int j = 0; j < c; j++) {
            meanF[j] = (float) mean[j];
            invstd[j] = (float) (1 / Math.sqrt(m2[j] / count + bn1.eps()));
        }
        NDArray gamma = ps.getValue(bn1.weight(), x.getDevice(), true);
        NDArray beta = ps.getValue(bn1.bias(), x.getDevice(), true);
        double[] dBeta = new double[c];
        double[] dGamma = new double[c];
        for (long i = 0; i < n; i += chunk) {
            try (NDScope scope = new NDScope()) {
                scope.suppressNotUsedWarning();
                NDArray[] yHat = normalizedAndGradient(ps, x, upstream, i, chunk, meanF, invstd, gamma, beta, null);
                float[] sumDy = yHat[1].sum(new int[] {0, 2, 3}).toFloatArray();
                float[] sumDyXhat = yHat[1].mul(yHat[0]).sum(new int[] {0, 2, 3}).toFloatArray();
                for (int j = 0; j < c; j++) {
                    dBeta[j] += sumDy[j];
                    dGamma[j] += sumDyXhat[j];
                }
            }
        }
        if (conv1.weight().requiresGradient()) {
            // dC = γ·invstd·(dY − dβ/m − x̂·dγ/m), per chunk, back-propagated through conv1.
            float[] meanDBeta = new float[c];
            float[] meanDGamma = new float[c];
            float[] scale = gamma.toFloatArray();
            for (int j = 0; j < c; j++) {
                meanDBeta[j] = (float) (dBeta[j] / count);
                meanDGamma[j] = (float) (dGamma[j] / count);
                scale[j] *= invstd[j];
            }
            Shape perChannel = new Shape(1, c, 1, 1);
            for (long i = 0; i < n; i += chunk) {
                try (NDScope scope = new NDScope()) {
                    scope.suppressNotUsedWarning();
                    NDArray[] conv = new NDArray[1];
                    NDArray[] yHat = normalizedAndGradient(ps, x, upstream, i, chunk, meanF, invstd, gamma, beta, conv);
                    NDManager m = conv[0].getManager();
                    NDArray dConv;
                    try (Engines.NoGrad g = Engines.noGrad()) {
                        g.getClass();
                        dConv = yHat[1].sub(m.create(meanDBeta, perChannel))
                                .sub(yHat[0].mul(m.create(meanDGamma, perChannel)))
                                .mul(m.create(scale, perChannel));
                    }
                    Engines.backward(conv[0], dConv);
                }
            }
        }
        // dγ and dβ added to bn1's gradients by autograd itself (a leaf's backward from a gradient accumulates it).
        float[] dGammaF = new float[c];
        float[] dBetaF = new float[c];
        for (int j = 0; j < c; j++) {
            dGammaF[j] = (float) dGamma[j];
            dBetaF[j] = (float) dBeta[j];
        }
        try (NDScope scope = new NDScope()) {
            scope.suppressNotUsedWarning();
            if (bn1.weight().requiresGradient()) {
                Engines.backward(gamma, gamma.getManager().create(dGammaF));
            }
            if (bn1.bias().requiresGradient()) {
                Engines.backward(beta, beta.getManager().create(dBetaF));
            }
        }
    }

    /**
     * For the images {@code [from, from + chunk)}: x̂, bn1's normalized output with the batch's statistics, and dY, the
     * gradient at bn1's output from {@code upstream} through the pool and ReLU (autograd over those two only). With
     * {@code conv} non-null, conv1's output is computed with autograd and left there.
     */
    private NDArray[] normalizedAndGradient(ParameterStore ps, NDArray x, NDArray upstream, long from, int chunk,
            float[] mean, float[] invstd, NDArray gamma, NDArray beta, NDArray[] conv) {
        int c = mean.length;
        Shape perChannel = new Shape(1, c, 1, 1);
        NDArray in = rows(x, from, chunk);
        NDArray xHat;
        NDArray y;
        NDArray out;
        if (conv != null) {
            conv[0] = conv1.forward(ps, new NDList(in), true).singletonOrThrow();
        }
        try (Engines.NoGrad g = Engines.noGrad()) {
            g.getClass();
            NDArray c1 = conv != null ? conv[0] : conv1.forward(ps, new NDList(in), true).singletonOrThrow();
            NDManager m = c1.getManager();
            xHat = c1.sub(m.create(mean, perChannel)).mul(m.create(invstd, perChannel));
            y = xHat.mul(gamma.reshape(perChannel)).add(beta.reshape(perChannel));
        }
        y.setRequiresGradient(true);
        NDArray p = MaxPoolIndices.maxPool2d(y, 3, 2, 1);
        out = Activation.relu(p);
        Engines.backward(out, rows(upstream, from, chunk));
        return new NDArray[] {xHat, y.getGradient()};
    }

    /** Rows {@code [from, from + count)} of {@code a}'s first axis (fewer at its end). */
    static NDArray rows(NDArray a, long from, long count) {
        return a.get(new NDIndex("{}:{}", from, Math.min(from + count, a.getShape().get(0))));
    }

    @Override
    protected Shape stageOutputShape(int stage, Shape in) {
        switch (stage) {
            case 0: {
                Shape c = conv1.getOutputShapes(new Shape[] {in})[0];
                return new Shape(c.get(0), c.get(1), (c.get(2) + 1) / 2, (c.get(3) + 1) / 2);
            }
            case 1:
            case 2:
            case 3:
            case 4:
                return layers[stage - 1].getOutputShapes(new Shape[] {in})[0];
            case 5:
                return new Shape(in.get(0), numClasses());
            default:
                throw new IllegalArgumentException("no stage " + stage);
        }
    }

    @Override
    protected void initializeChildBlocks(NDManager manager, DataType dataType, Shape... inputShapes) {
        Shape[] s = inputShapes;
        conv1.initialize(manager, dataType, s);
        s = conv1.getOutputShapes(s);
        bn1.initialize(manager, dataType, s);
        s = new Shape[] {stageOutputShape(0, inputShapes[0])};
        for (Sequential layer : layers) {
            layer.initialize(manager, dataType, s);
            s = layer.getOutputShapes(s);
        }
        head().initialize(manager, dataType, new Shape(s[0].get(0), arch().featureDim()));
    }

    @Override
    protected GraphSink.Value traceStage(int stage, GraphSink g, GraphSink.Value x) {
        if (stage == 0) {
            GraphSink.Value y = Traces.act(g, Act.Kind.RELU, traceChild(g, "", "bn1", traceChild(g, "", "conv1", x)));
            return new GraphSink.Value(g.op("MaxPool", Traces.window(3, 2, 1), y.name()), stageOutputShape(0, x.shape()));
        }
        if (stage <= 4) {
            return traceChild(g, "", "layer" + stage, x);
        }
        return traceHead(g, Traces.globalPoolFlatten(g, x));
    }
}
