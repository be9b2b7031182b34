package dev.finetune.policy;

/**
 * What the policy needs to know about one tensor of the model.
 *
 * @param name torchvision name
 * @param shape its shape
 * @param buffer true for running statistics (never trained by the optimizer)
 * @param bnModule the BatchNorm module it belongs to ({@code layer1.0.bn1}), or null
 * @param stage index of the model stage it belongs to (0 is the stem; the last stage is the head), -1 when unknown
 * @param stageNames the model's stage names in forward order (empty when unknown)
 */
public record TensorInfo(
        String name, long[] shape, boolean buffer, String bnModule, int stage, java.util.List<String> stageNames) {
    /** A tensor outside any known stage structure (frozen_stages then matches nothing). */
    public TensorInfo(String name, long[] shape, boolean buffer, String bnModule) {
        this(name, shape, buffer, bnModule, -1, java.util.List.of());
    }

    /** Number of elements. */
    public long count() {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        return n;
    }
}
