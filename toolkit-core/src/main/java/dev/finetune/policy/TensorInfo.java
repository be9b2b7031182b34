package dev.finetune.policy;

/**
 * What the policy needs to know about one tensor of the model.
 *
 * @param name torchvision name
 * @param shape its shape
 * @param buffer true for running statistics (never trained by the optimizer)
 * @param bnModule the BatchNorm module it belongs to ({@code layer1.0.bn1}), or null
 */
public record TensorInfo(String name, long[] shape, boolean buffer, String bnModule) {
    /** Number of elements. */
    public long count() {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        return n;
    }
}
