#!/usr/bin/python3
"""torchvision's prediction for an image file, for the predict parity test.

    /usr/bin/python3 scripts/reference/predict_reference.py CHECKPOINT.pth OUT_DIR

Writes OUT_DIR/image.png (a 256x256 RGB image with smooth structure) and OUT_DIR/probs.json: softmax probabilities
of torchvision.models.resnet18 with CHECKPOINT under torchvision's standard evaluation preprocessing
(Resize(256), CenterCrop(224), ToTensor, Normalize(ImageNet mean/std)), read from the PNG file with PIL.
"""
import json
import os
import sys

import numpy as np
import torch
import torchvision
from PIL import Image
from torchvision import transforms

ckpt, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(0)
yy, xx = np.mgrid[0:256, 0:256] / 255.0
img = np.stack([
    0.5 + 0.5 * np.sin(6 * xx + 3 * yy),
    0.5 + 0.5 * np.cos(4 * yy - 2 * xx * yy),
    (xx + yy) / 2,
], axis=-1)
img = np.clip(img + rng.normal(0, 0.05, img.shape), 0, 1)
Image.fromarray((img * 255).astype(np.uint8), "RGB").save(os.path.join(out, "image.png"))

model = torchvision.models.resnet18()
model.load_state_dict(torch.load(ckpt))
model.eval()
prep = transforms.Compose([
    transforms.Resize(256), transforms.CenterCrop(224), transforms.ToTensor(),
    transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
x = prep(Image.open(os.path.join(out, "image.png")).convert("RGB")).unsqueeze(0)
with torch.no_grad():
    p = torch.softmax(model(x), 1)[0]
top = torch.topk(p, 5)
json.dump({"probs": p.tolist(), "top5": top.indices.tolist()}, open(os.path.join(out, "probs.json"), "w"))
