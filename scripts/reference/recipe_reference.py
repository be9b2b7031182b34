#!/usr/bin/python3
"""PyTorch's side of the recipe parity test: label smoothing, class weights and gradient clipping.

    /usr/bin/python3 scripts/reference/recipe_reference.py CHECKPOINT.pth OUT_DIR

From torchvision's resnet18 with CHECKPOINT: a linear probe (fc trains, everything else frozen, BN in eval mode), SGD
(lr 0.01, momentum 0.9), three steps on one fixed batch with CrossEntropyLoss(weight=w, label_smoothing=0.1) and
clip_grad_norm_(max_norm=0.05). Writes, raw little-endian: x.f32 (4, 3, 64, 64), y.i64 (4), w.f32 (1000),
losses.f32 (3), norms.f32 (3, the total norms before clipping), fc_weight.f32 and fc_bias.f32 after the steps;
then DONE.
"""
import os
import sys

import numpy
import torch
import torchvision

ckpt, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
torch.manual_seed(0)
torch.set_num_threads(1)
x = torch.randn(4, 3, 64, 64)
y = torch.tensor([3, 7, 3, 999])
w = torch.rand(1000) * 1.5 + 0.5
model = torchvision.models.resnet18()
model.load_state_dict(torch.load(ckpt))
model.eval()  # every BN frozen, as batchnorm: auto does for a linear probe
for name, p in model.named_parameters():
    p.requires_grad = name.startswith("fc.")
params = [p for p in model.parameters() if p.requires_grad]
opt = torch.optim.SGD(params, lr=0.01, momentum=0.9)
criterion = torch.nn.CrossEntropyLoss(weight=w, label_smoothing=0.1)
losses, norms = [], []
for _ in range(3):
    opt.zero_grad()
    loss = criterion(model(x), y)
    loss.backward()
    norms.append(float(torch.nn.utils.clip_grad_norm_(params, max_norm=0.05)))
    opt.step()
    losses.append(loss.item())
x.numpy().astype("<f4").tofile(os.path.join(out, "x.f32"))
y.numpy().astype("<i8").tofile(os.path.join(out, "y.i64"))
w.numpy().astype("<f4").tofile(os.path.join(out, "w.f32"))
numpy.array(losses, dtype="<f4").tofile(os.path.join(out, "losses.f32"))
numpy.array(norms, dtype="<f4").tofile(os.path.join(out, "norms.f32"))
model.fc.weight.detach().numpy().astype("<f4").tofile(os.path.join(out, "fc_weight.f32"))
model.fc.bias.detach().numpy().astype("<f4").tofile(os.path.join(out, "fc_bias.f32"))
open(os.path.join(out, "DONE"), "w").close()
