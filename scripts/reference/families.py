#!/usr/bin/python3
"""torchvision references for every architecture family beyond ResNet-18 (names, parameter counts, logits).

    /usr/bin/python3 scripts/reference/families.py ARCH[,ARCH...] OUT_DIR

For each ARCH (a torchvision.models builder name) writes, into OUT_DIR:
  ARCH.pth             the seeded model's state_dict, with non-trivial BN statistics and affine values
  ARCH.keys.txt        state_dict keys in order, one per line, then a last line "params N"
  ARCH_eval.f32        eval-mode logits (2, 1000) for input.f32
  ARCH_train.f32       train-mode logits (dropout and stochastic depth off: p=0) for the same input
  ARCH_train_stats.f32 running_mean then running_var of the first BatchNorm after that train-mode forward (empty
                       when the network has no BatchNorm)
and input.f32, a (2, 3, 64, 64) input; raw little-endian float32. Writes DONE last.
"""
import os
import sys

import torch
import torchvision

archs = sys.argv[1].split(",")
out = sys.argv[2]
os.makedirs(out, exist_ok=True)
torch.manual_seed(0)
torch.set_num_threads(1)
x = torch.randn(2, 3, 64, 64)
x.numpy().astype("<f4").tofile(os.path.join(out, "input.f32"))
for name in archs:
    torch.manual_seed(1)
    model = getattr(torchvision.models, name)()
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    with torch.no_grad():
        model.train()
        for m in model.modules():
            if isinstance(m, (torch.nn.Dropout, torchvision.ops.StochasticDepth)):
                m.p = 0.0
        model(torch.randn(4, 3, 64, 64))
        for m in norms:
            m.weight.uniform_(0.5, 1.5)
            m.bias.uniform_(-0.2, 0.2)
        for m in model.modules():
            # Non-zero biases, so that a bias that is dropped or misplaced shows in the logits.
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)) and m.bias is not None:
                m.bias.uniform_(-0.1, 0.1)
            # Layer scale and LayerNorm affine values far from their initial 1e-6 / 1 / 0, so that they count.
            if hasattr(m, "layer_scale"):
                m.layer_scale.uniform_(0.5, 1.5)
            if isinstance(m, torch.nn.LayerNorm):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
        model.eval()
        logits = model(x)
    torch.save(model.state_dict(), os.path.join(out, name + ".pth"))
    logits.numpy().astype("<f4").tofile(os.path.join(out, name + "_eval.f32"))
    with open(os.path.join(out, name + ".keys.txt"), "w") as f:
        for k in model.state_dict().keys():
            f.write(k + "\n")
        f.write("params %d\n" % sum(p.numel() for p in model.parameters()))
    with torch.no_grad():
        model.train()
        train_logits = model(x)
    train_logits.numpy().astype("<f4").tofile(os.path.join(out, name + "_train.f32"))
    stats = (torch.cat([norms[0].running_mean, norms[0].running_var]) if norms  # no BatchNorm: empty
             else torch.zeros(0))
    stats.numpy().astype("<f4").tofile(os.path.join(out, name + "_train_stats.f32"))
open(os.path.join(out, "DONE"), "w").close()
