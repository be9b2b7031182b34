#!/usr/bin/python3
"""Loads a .pth exported by `finetune export` the way a PyTorch user would, and checks its logits.

    /usr/bin/python3 scripts/reference/check_export.py MODEL.pth NUM_CLASSES INPUT.f32 LOGITS.f32 N H W

INPUT.f32 / LOGITS.f32: raw little-endian float32, input (N, 3, H, W), the toolkit's logits (N, NUM_CLASSES).
Prints the largest absolute difference; exits 1 when it is above 1e-4.
"""
import sys

import numpy as np
import torch
import torchvision

path, classes, inp, logits, n, h, w = sys.argv[1:8]
classes, n, h, w = int(classes), int(n), int(h), int(w)
state = torch.load(path, weights_only=True)
model = torchvision.models.resnet18(num_classes=classes)
model.load_state_dict(state, strict=True)
model.eval()
x = torch.from_numpy(np.fromfile(inp, dtype="<f4").reshape(n, 3, h, w))
ours = torch.from_numpy(np.fromfile(logits, dtype="<f4").reshape(n, classes))
with torch.no_grad():
    theirs = model(x)
diff = (theirs - ours).abs().max().item()
print(f"keys {len(state)}  max_abs_diff {diff:.3e}")
sys.exit(0 if diff < 1e-4 else 1)
