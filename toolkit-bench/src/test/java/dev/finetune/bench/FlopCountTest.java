package dev.finetune.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.finetune.model.ResNet;
import dev.finetune.model.ResNetArch;
import org.junit.jupiter.api.Test;

/** The conv+linear work of ResNet-18, counted from the shapes. */
class FlopCountTest {

    @Test
    void resnet18ForwardIsTorchvisionsFamous1Point81GigaMacs() {
        // torchvision documents resnet18 as 1.81 "GFLOPS", which are multiply-adds; this exact figure is what
        // forward hooks on torchvision's own Conv2d/Linear modules sum to at 224x224 with the 1000-class head.
        FlopCount c = FlopCount.of(ResNet.create(ResNetArch.RESNET18, 1000), 224, name -> false);
        assertEquals(1_814_073_344L, c.forwardMacs());
        assertEquals(0, c.backwardMacs());
        assertEquals(21, c.layers().size(), "20 convs and fc");
    }

    @Test
    void backwardCountsOnlyWhatRunsBackward() {
        ResNet net = ResNet.create(ResNetArch.RESNET18, 10);
        FlopCount all = FlopCount.of(net, 224, name -> true);
        long forward = all.forwardMacs();
        long stem = all.layers().get(0).macs();
        // Fully trainable: weight gradients everywhere, input gradients everywhere but the stem (its input is data).
        assertEquals(2 * forward - stem, all.backwardMacs());

        FlopCount probe = FlopCount.of(net, 224, name -> name.startsWith("fc."));
        assertEquals(512L * 10, probe.backwardMacs(), "linear probe: only fc's weight gradient");

        FlopCount last = FlopCount.of(net, 224, name -> name.startsWith("layer4.") || name.startsWith("fc."));
        long layer4 = last.layers().stream().filter(l -> l.stage().equals("layer4")).mapToLong(l -> l.macs()).sum();
        long layer4Entry = last.layers().stream()
                .filter(l -> l.module().equals("layer4.0.conv1") || l.module().equals("layer4.0.downsample.0"))
                .mapToLong(l -> l.macs())
                .sum();
        // layer4: weight gradients of all its convs, input gradients of all but the two that read layer3's output;
        // fc: weight and input gradient.
        assertEquals(layer4 + (layer4 - layer4Entry) + 2 * 512L * 10, last.backwardMacs());
    }

    @Test
    void workloadCountsFollowTheirFreezePolicies() {
        long forward = FlopCount.forWorkload(Workload.INFERENCE, 64);
        // torchvision's convs at 64x64 sum to 148,045,824 MACs (forward hooks); fc(512 -> 10) adds 5,120.
        assertEquals(2 * (148_045_824L + 512 * 10), forward);
        assertEquals(forward + 2 * 512L * 10, FlopCount.forWorkload(Workload.FROZEN_STEP, 64));
        assertEquals(FlopCount.forWorkload(Workload.FROZEN_STEP, 64),
                FlopCount.forWorkload(Workload.FROZEN_STEP_FOLDED, 64));
    }
}
