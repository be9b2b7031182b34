package dev.finetune.engine;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Parameter;
import dev.finetune.optim.OptimizerSettings;
import dev.finetune.policy.FreezePolicy;
import dev.finetune.train.FineTuner;
import java.nio.ByteBuffer;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.Map;

/**
 * {@link HugePagesTest}'s child process: three SGD steps of a full fine-tune (ResNet-18 from torchvision's
 * initialization, seed 0, Nesterov momentum and weight decay, a fixed 4×3×64×64 batch), then prints a SHA-256 over every
 * parameter's float bits, {@link HugePages#describe()} and the AnonHugePages bytes.
 */
public final class HugePagesProbe {
    private HugePagesProbe() {}

    public static void main(String[] args) throws Exception {
        try (FineTuner ft = FineTuner.builder().headClasses(10).policy(FreezePolicy.trainAll())
                .optimizer(new OptimizerSettings("sgd", 0.05, 0.9, true, 0, 5e-4, 0.9, 0.999, 1e-8, false,
                        java.util.List.of()))
                .threads(1).seed(0).build();
                NDManager inputs = ft.manager().newSubManager()) {
            java.util.SplittableRandom r = new java.util.SplittableRandom(7);
            float[] pixels = new float[4 * 3 * 64 * 64];
            for (int i = 0; i < pixels.length; i++) {
                pixels[i] = (float) (2 * r.nextDouble() - 1);
            }
            NDArray x = NativeCopies.floats(inputs, pixels, new Shape(4, 3, 64, 64));
            NDArray y = inputs.create(new float[] {1, 3, 5, 7});
            for (int step = 0; step < 3; step++) {
                ft.trainStep(x, y, 0.05);
            }
            MessageDigest sha = MessageDigest.getInstance("SHA-256");
            for (Map.Entry<String, Parameter> e : ft.model().namedTensors().entrySet()) {
                float[] v = e.getValue().getArray().toFloatArray();
                ByteBuffer b = ByteBuffer.allocate(4 * v.length);
                for (float f : v) {
                    b.putInt(Float.floatToRawIntBits(f));
                }
                sha.update(e.getKey().getBytes(java.nio.charset.StandardCharsets.UTF_8));
                sha.update(b.array());
            }
            System.out.println("parameters " + HexFormat.of().formatHex(sha.digest()));
            System.out.println("huge pages: " + HugePages.describe());
            System.out.println("anon huge bytes " + MemoryUse.anonHugePagesBytes());
        }
    }
}
