#!/usr/bin/python3
"""PyTorch's side of BnRecalibrationTest: torch.optim.swa_utils.update_bn on a seeded torchvision network.

    /usr/bin/python3 scripts/reference/update_bn_reference.py REF_DIR ARCH OUT_DIR
        Loads REF_DIR/ARCH.pth (written by families.py), draws 3 batches of (4, 3, 32, 32) from seed 0 and writes them
        to OUT_DIR/batches.f32, runs update_bn over them (train mode, momentum=None, dropout off) and writes
        OUT_DIR/stats.f64: per BatchNorm layer (module order) the sums of running_mean and of running_var, then
        OUT_DIR/first.f32: the first layer's running_mean and running_var, and DONE.
"""
import os
import sys

import numpy
import torch
import torchvision

ref, arch, out = sys.argv[1], sys.argv[2], sys.argv[3]
os.makedirs(out, exist_ok=True)
torch.manual_seed(0)
batches = [torch.randn(4, 3, 32, 32) for _ in range(3)]
torch.cat(batches).numpy().astype("<f4").tofile(os.path.join(out, "batches.f32"))
model = getattr(torchvision.models, arch)()
model.load_state_dict(torch.load(os.path.join(ref, arch + ".pth")))
for m in model.modules():
    if isinstance(m, torch.nn.Dropout):
        m.p = 0.0
torch.optim.swa_utils.update_bn(batches, model)
bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
stats = []
for m in bns:
    stats += [m.running_mean.double().sum().item(), m.running_var.double().sum().item()]
numpy.array(stats, dtype="<f8").tofile(os.path.join(out, "stats.f64"))
torch.cat([bns[0].running_mean, bns[0].running_var]).numpy().astype("<f4").tofile(os.path.join(out, "first.f32"))
assert all(m.num_batches_tracked.item() == 3 for m in bns)
open(os.path.join(out, "DONE"), "w").close()
