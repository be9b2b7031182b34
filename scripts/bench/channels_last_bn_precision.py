#!/usr/bin/python3
"""How far PyTorch's channels-last training gradients are from the float64 step, per top-level module.

    /usr/bin/python3 scripts/bench/channels_last_bn_precision.py [SIZE:BATCH,...] [freeze-stats]

One forward and backward of torchvision's ResNet-18 with models/resnet18-fmnist-a.safetensors (a Fashion-MNIST
fine-tune) on the first Fashion-MNIST test images of its five classes, resized and normalized as in
scripts/reference/channels_last_steps.py, every BatchNorm in train mode (or eval mode with `freeze-stats`), one thread:
NCHW float32, channels-last float32 and NCHW float64. Prints the relative L2 difference of each module's gradient
(conv1, bn1, layer1 ... fc) for channels-last against NCHW, NCHW against float64 and channels-last against float64.
Why the toolkit keeps train-mode BatchNorm out of channels-last training (dev.finetune.train.ChannelsLastTraining).
"""
import os
import sys

import torch
import torchvision

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
from channels_last_steps import fashion_mnist_batch, read_safetensors  # noqa: E402


def main():
    specs = sys.argv[1] if len(sys.argv) > 1 else "64:8,96:4,224:4"
    frozen = len(sys.argv) > 2 and sys.argv[2] == "freeze-stats"
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    torch.set_num_threads(1)
    state = read_safetensors(os.path.join(root, "models", "resnet18-fmnist-a.safetensors"))
    classes = state["fc.weight"].shape[0]
    for spec in specs.split(","):
        size, batch = (int(v) for v in spec.split(":"))
        x, y = fashion_mnist_batch("/usr/share/datasets/fashion-mnist", size, batch, classes)
        grads = {}
        for tag in ("nchw", "cl", "f64"):
            model = torchvision.models.resnet18(num_classes=classes)
            model.load_state_dict(state)
            model.train()
            if frozen:
                for m in model.modules():
                    if isinstance(m, torch.nn.BatchNorm2d):
                        m.eval()
            xi = x
            if tag == "cl":
                model = model.to(memory_format=torch.channels_last)
                xi = x.contiguous(memory_format=torch.channels_last)
            elif tag == "f64":
                model = model.double()
                xi = x.double()
            torch.nn.functional.cross_entropy(model(xi), y).backward()
            grads[tag] = {n: p.grad.double() for n, p in model.named_parameters()}
        for a, b in (("cl", "nchw"), ("nchw", "f64"), ("cl", "f64")):
            acc = {}
            for n in grads[a]:
                k = n.split(".")[0]
                d, r = acc.get(k, (0.0, 0.0))
                acc[k] = (d + ((grads[a][n] - grads[b][n]) ** 2).sum().item(), r + (grads[b][n] ** 2).sum().item())
            print("%dx%d batch %d, BN %s: %s vs %s: %s" % (size, size, batch, "eval" if frozen else "train", a, b,
                  ", ".join("%s %.2g" % (k, (d / r) ** 0.5) for k, (d, r) in acc.items())))


if __name__ == "__main__":
    main()
