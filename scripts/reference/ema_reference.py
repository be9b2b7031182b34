#!/usr/bin/python3
"""PyTorch's side of the weight-EMA parity test (timm's ModelEmaV2 update rule, written out: timm is not packaged).

    /usr/bin/python3 scripts/reference/ema_reference.py CHECKPOINT.pth OUT_DIR

From torchvision's resnet18 with CHECKPOINT: layer4 and fc train, layer4's BatchNorms in train mode (statistics
update), every other module in eval mode; SGD (lr 0.01, momentum 0.9), five steps on one fixed batch; after each
step, for every state_dict tensor: ema = 0.9 * ema + 0.1 * w (ModelEmaV2's update with decay 0.9, from a copy of the
starting state). Writes, raw little-endian: x.f32 (4, 3, 64, 64), y.i64 (4), losses.f32 (5), and the averages of
the tensors named in NAMES as NAME.f32; then DONE.
"""
import copy
import os
import sys

import numpy
import torch
import torchvision

NAMES = ["fc.weight", "fc.bias", "layer4.1.conv2.weight", "layer4.0.bn1.weight", "layer4.1.bn2.running_mean",
         "layer4.1.bn2.running_var", "layer3.1.conv2.weight"]
ckpt, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
torch.manual_seed(0)
torch.set_num_threads(1)
x = torch.randn(4, 3, 64, 64)
y = torch.tensor([3, 7, 3, 999])
model = torchvision.models.resnet18()
model.load_state_dict(torch.load(ckpt))
model.eval()
model.layer4.train()
for name, p in model.named_parameters():
    p.requires_grad = name.startswith("layer4.") or name.startswith("fc.")
ema = copy.deepcopy(model.state_dict())
params = [p for p in model.parameters() if p.requires_grad]
opt = torch.optim.SGD(params, lr=0.01, momentum=0.9)
losses = []
for _ in range(5):
    opt.zero_grad()
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    losses.append(loss.item())
    with torch.no_grad():
        for k, v in model.state_dict().items():
            if v.dtype.is_floating_point:
                ema[k].copy_(0.9 * ema[k] + (1.0 - 0.9) * v)
x.numpy().astype("<f4").tofile(os.path.join(out, "x.f32"))
y.numpy().astype("<i8").tofile(os.path.join(out, "y.i64"))
numpy.array(losses, dtype="<f4").tofile(os.path.join(out, "losses.f32"))
for n in NAMES:
    ema[n].numpy().astype("<f4").tofile(os.path.join(out, n + ".f32"))
open(os.path.join(out, "DONE"), "w").close()
