#!/usr/bin/python3
"""torchvision ResNet-34 and ResNet-50 references (BasicBlock with more units, and Bottleneck).

    /usr/bin/python3 scripts/reference/resnet_variants.py OUT_DIR

Writes OUT_DIR/resnet{34,50}.pth (seeded, with non-trivial BN statistics) and OUT_DIR/resnet{34,50}_logits.f32,
plus OUT_DIR/variants_input.f32: a (2, 3, 64, 64) input, raw little-endian float32; eval-mode logits (2, 1000).
"""
import os
import sys

import torch
import torchvision

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
torch.manual_seed(0)
torch.set_num_threads(1)
x = torch.randn(2, 3, 64, 64)
x.numpy().astype("<f4").tofile(os.path.join(out, "variants_input.f32"))
for name in ("resnet34", "resnet50"):
    model = getattr(torchvision.models, name)()
    with torch.no_grad():
        model.train()
        model(torch.randn(4, 3, 64, 64))
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
        model.eval()
        logits = model(x)
    torch.save(model.state_dict(), os.path.join(out, name + ".pth"))
    logits.numpy().astype("<f4").tofile(os.path.join(out, name + "_logits.f32"))
