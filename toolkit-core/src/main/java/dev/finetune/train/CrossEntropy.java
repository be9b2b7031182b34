package dev.finetune.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import dev.finetune.ConfigException;

/**
 * PyTorch's {@code nn.CrossEntropyLoss(weight=w, label_smoothing=ε)} with mean reduction, as its ATen code computes
 * it: {@code (1 − ε)·Σᵢ w[yᵢ]·(−log pᵢ[yᵢ]) / Σᵢ w[yᵢ] + ε/C · Σᵢ Σ_c w[c]·(−log pᵢ[c]) / Σᵢ w[yᵢ]} (without weights
 * every w is 1, so the divisor is the batch size). Written out because DJL's softmax cross-entropy has neither class
 * weights nor label smoothing.
 */
public final class CrossEntropy {
    private final double labelSmoothing;
    private final float[] classWeights;

    /**
     * @param labelSmoothing ε in [0, 1)
     * @param classWeights one positive finite weight per class, or null for none
     */
    public CrossEntropy(double labelSmoothing, float[] classWeights) {
        if (!(labelSmoothing >= 0 && labelSmoothing < 1)) {
            throw new ConfigException(ConfigException.Part.LOSS, "label_smoothing",
                    "must be in [0, 1), found " + labelSmoothing);
        }
        if (classWeights != null) {
            for (float w : classWeights) {
                if (!(w > 0) || Float.isInfinite(w)) {
                    throw new ConfigException(ConfigException.Part.LOSS, "class_weights",
                            "each must be a positive finite number, found " + w);
                }
            }
        }
        this.labelSmoothing = labelSmoothing;
        this.classWeights = classWeights == null ? null : classWeights.clone();
    }

    /** Plain cross-entropy (PyTorch's defaults). */
    public static CrossEntropy plain() {
        return new CrossEntropy(0, null);
    }

    public double labelSmoothing() {
        return labelSmoothing;
    }

    /** The class weights, or null. */
    public float[] classWeights() {
        return classWeights == null ? null : classWeights.clone();
    }

    /**
     * The mean loss of {@code logits} (N, C) against integer {@code labels} (N), as a scalar on the logits' manager;
     * or, when {@code labels} is (N, C), against those probability targets (Mixup/CutMix): timm's
     * {@code SoftTargetCrossEntropy}, {@code mean over i of Σ_c −t[i,c]·log p[i,c]} (the targets already carry any
     * label smoothing; class weights do not apply to soft targets).
     */
    public NDArray evaluate(NDArray labels, NDArray logits) {
        if (labels.getShape().dimension() == 2) {
            return labels.mul(logits.logSoftmax(1)).sum(new int[] {1}).neg().mean();
        }
        int classes = Math.toIntExact(logits.getShape().get(1));
        if (classWeights != null && classWeights.length != classes) {
            throw new ConfigException(ConfigException.Part.LOSS, "class_weights", "has " + classWeights.length
                    + " weights but the head has " + classes + " classes");
        }
        NDArray logp = logits.logSoftmax(1);
        NDArray y = labels.toType(DataType.INT64, false).reshape(-1, 1);
        NDArray picked = logp.gather(y, 1).reshape(-1).neg(); // −log pᵢ[yᵢ]
        NDArray w = classWeights == null ? null : logits.getManager().create(classWeights);
        NDArray wy = w == null ? null : w.gather(y.reshape(-1), 0);
        NDArray denominator = wy == null ? logits.getManager().create((float) logits.getShape().get(0)) : wy.sum();
        NDArray nll = (wy == null ? picked : picked.mul(wy)).sum().div(denominator);
        if (labelSmoothing == 0) {
            return nll;
        }
        NDArray smooth = (w == null ? logp : logp.mul(w.reshape(1, -1))).sum(new int[] {1}).neg().sum()
                .div(denominator);
        // Scalar factors libtorch owns: autograd keeps them for the backward (see Scalars).
        return nll.mul(dev.finetune.model.Scalars.of(nll, (float) (1 - labelSmoothing)))
                .add(smooth.mul(dev.finetune.model.Scalars.of(smooth, (float) (labelSmoothing / classes))));
    }
}
