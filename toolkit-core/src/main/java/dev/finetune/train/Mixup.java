package dev.finetune.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import org.apache.commons.rng.UniformRandomProvider;
import org.apache.commons.rng.sampling.distribution.AhrensDieterMarsagliaTsangGammaSampler;
import org.apache.commons.rng.simple.RandomSource;

/**
 * Batch-level Mixup and CutMix with timm's semantics ({@code timm.data.Mixup}, mode "batch", {@code correct_lam}):
 * per batch, with probability {@code prob}, either Mixup ({@code x = λx + (1−λ)·flip(x)}, λ ~ Beta(α_mixup, α_mixup))
 * or CutMix (a box of area ratio 1−λ, λ ~ Beta(α_cutmix, α_cutmix), centred uniformly and clipped to the image, pasted
 * from the batch flipped; λ corrected to the pasted area), chosen with probability {@code switchProb} for CutMix when
 * both are on. Targets are mixed the same way from label-smoothed one-hot vectors: {@code λ·t(y) + (1−λ)·t(flip(y))}
 * with {@code t} = 1 − ε + ε/C on the class and ε/C elsewhere. "flip" is the batch reversed, as timm pairs samples.
 *
 * <p>Every draw comes from a generator seeded by (seed, epoch, batch), so a resumed run mixes exactly as the
 * uninterrupted one. The mixed images change what a frozen prefix sees, so the feature cache is off with Mixup.
 *
 * @param mixupAlpha Beta parameter of Mixup, 0 for off
 * @param cutmixAlpha Beta parameter of CutMix, 0 for off
 * @param prob probability that a batch is mixed at all
 * @param switchProb probability of CutMix rather than Mixup when both are on
 */
public record Mixup(double mixupAlpha, double cutmixAlpha, double prob, double switchProb) {

    public Mixup {
        if (!(mixupAlpha >= 0) || !(cutmixAlpha >= 0) || mixupAlpha + cutmixAlpha == 0
                || Double.isInfinite(mixupAlpha) || Double.isInfinite(cutmixAlpha)) {
            throw new IllegalArgumentException("mixup_alpha and cutmix_alpha must be >= 0 and finite, one of them > 0;"
                    + " found " + mixupAlpha + " and " + cutmixAlpha);
        }
        if (!(prob >= 0 && prob <= 1) || !(switchProb >= 0 && switchProb <= 1)) {
            throw new IllegalArgumentException("prob and switch_prob must be in [0, 1], found " + prob + " and "
                    + switchProb);
        }
    }

    /** What one batch became: the mixed images, the soft targets (N, C), and the draw (for tests and logs). */
    public record Mixed(NDArray images, NDArray targets, double lambda, boolean cutmix, int[] box) {}

    /** The draw for batch {@code batch} of epoch {@code epoch} (0-based) of a run seeded {@code seed}. */
    record Draw(double lambda, boolean cutmix, int[] box) {}

    Draw draw(long seed, int epoch, int batch, int height, int width) {
        UniformRandomProvider rng = RandomSource.SPLIT_MIX_64.create(
                mix(mix(seed * 0x9E3779B97F4A7C15L + epoch) + batch) ^ 0x6D697875704CL);
        if (rng.nextDouble() >= prob) {
            return new Draw(1.0, false, null);
        }
        boolean cutmix = mixupAlpha > 0 && cutmixAlpha > 0 ? rng.nextDouble() < switchProb : cutmixAlpha > 0;
        double alpha = cutmix ? cutmixAlpha : mixupAlpha;
        double lambda = beta(rng, alpha);
        if (!cutmix) {
            return new Draw(lambda, false, null);
        }
        // timm's rand_bbox: cut sides sqrt(1 − λ) of the image's, centre uniform over the image, clipped.
        double ratio = Math.sqrt(1 - lambda);
        int ch = (int) (height * ratio);
        int cw = (int) (width * ratio);
        int cy = rng.nextInt(height);
        int cx = rng.nextInt(width);
        int y0 = clip(cy - ch / 2, height);
        int y1 = clip(cy + ch / 2, height);
        int x0 = clip(cx - cw / 2, width);
        int x1 = clip(cx + cw / 2, width);
        double corrected = 1.0 - (double) (y1 - y0) * (x1 - x0) / ((double) height * width);
        return new Draw(corrected, true, new int[] {y0, y1, x0, x1});
    }

    /**
     * Mixes a batch of images (N, 3, H, W) with integer labels (N) into images and soft targets for {@code classes}
     * classes with label smoothing {@code smoothing}; the results live on {@code manager}.
     */
    public Mixed apply(NDArray images, NDArray labels, int classes, double smoothing, long seed, int epoch, int batch,
            NDManager manager) {
        long[] s = images.getShape().getShape();
        Draw d = draw(seed, epoch, batch, (int) s[2], (int) s[3]);
        long n = s[0];
        NDArray flipped = images.flip(0);
        NDArray mixed;
        if (d.lambda() >= 1.0) {
            mixed = images.duplicate();
        } else if (!d.cutmix()) {
            mixed = images.mul((float) d.lambda()).add(flipped.mul((float) (1 - d.lambda())));
        } else {
            int[] b = d.box();
            mixed = images.duplicate();
            if (b[1] > b[0] && b[3] > b[2]) {
                NDIndex box = new NDIndex(":, :, {}:{}, {}:{}", b[0], b[1], b[2], b[3]);
                mixed.set(box, flipped.get(box));
            }
        }
        float off = (float) (smoothing / classes);
        float on = (float) (1 - smoothing + off);
        NDArray y = labels.toType(DataType.INT64, false);
        NDArray oneHot = y.oneHot(classes).toType(DataType.FLOAT32, false).mul(on - off).add(off);
        NDArray targets = d.lambda() >= 1.0 ? oneHot
                : oneHot.mul((float) d.lambda()).add(oneHot.flip(0).mul((float) (1 - d.lambda())));
        mixed.attach(manager);
        targets.attach(manager);
        if (targets.getShape().get(0) != n) {
            throw new IllegalStateException("targets for " + n + " images, found " + targets.getShape());
        }
        return new Mixed(mixed, targets, d.lambda(), d.cutmix(), d.box());
    }

    private static int clip(int v, int max) {
        return Math.max(0, Math.min(max, v));
    }

    /** Beta(α, α) as X / (X + Y) of two Gamma(α, 1) draws. */
    private static double beta(UniformRandomProvider rng, double alpha) {
        var gamma = AhrensDieterMarsagliaTsangGammaSampler.of(rng, alpha, 1.0);
        double x = gamma.sample();
        double y = gamma.sample();
        return x + y == 0 ? 0.5 : x / (x + y);
    }

    /** SplitMix64's finaliser: neighbouring (seed, epoch, batch) triples get unrelated generator seeds. */
    private static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }
}
