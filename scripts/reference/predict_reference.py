#!/usr/bin/python3
"""torchvision's predictions for image files, for the predict parity test.

    /usr/bin/python3 scripts/reference/predict_reference.py CHECKPOINT.pth OUT_DIR [ARCH RESIZE CROP INTERPOLATION [TTA]]

Writes image files with smooth structure and noise to OUT_DIR: a 256x256 PNG, and non-square odd sizes as JPEG
(4:2:0, 4:2:2, progressive) and PNG (RGB, palette, grayscale). OUT_DIR/probs.json maps each file name to the softmax
probabilities of torchvision.models.resnet18 with CHECKPOINT under torchvision's standard evaluation preprocessing
(Resize(256), CenterCrop(224), ToTensor, Normalize(ImageNet mean/std)) of Image.open(file).convert("RGB"), and to
their top 5 classes. With ARCH, the model is torchvision.models.ARCH and the preprocessing Resize(RESIZE,
INTERPOLATION) + CenterCrop(CROP) (the eval transform torchvision publishes with that architecture's weights). With TTA
(flip or five-crop), the probabilities are the mean of the softmaxes of the views: the eval image and its F.hflip, or
FiveCrop(CROP) of the resized image.
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
arch, resize, crop, interp = (sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]) if len(sys.argv) > 3 \
    else ("resnet18", 256, 224, "bilinear")
tta = sys.argv[7] if len(sys.argv) > 7 else "none"
os.makedirs(out, exist_ok=True)


def picture(w, h, seed):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / 255.0
    img = np.stack([
        0.5 + 0.5 * np.sin(6 * xx + 3 * yy + seed),
        0.5 + 0.5 * np.cos(4 * yy - 2 * xx * yy),
        (xx + yy) / 2 + 0.1 * np.sin(20 * xx * (seed + 1)),
    ], axis=-1)
    return (np.clip(img + rng.normal(0, 0.05, img.shape), 0, 1) * 255).astype(np.uint8)


images = {
    "image.png": lambda f: Image.fromarray(picture(256, 256, 0), "RGB").save(f),
    "photo_333x250.jpg": lambda f: Image.fromarray(picture(333, 250, 1), "RGB").save(f, quality=90),
    "photo_500x375_422.jpg": lambda f: Image.fromarray(picture(500, 375, 2), "RGB").save(f, quality=85,
                                                                                         subsampling=1),
    "photo_301x419_progressive.jpg": lambda f: Image.fromarray(picture(301, 419, 3), "RGB").save(
        f, quality=80, progressive=True),
    "odd_97x61.png": lambda f: Image.fromarray(picture(97, 61, 4), "RGB").save(f),
    "odd_229x300_palette.png": lambda f: Image.fromarray(picture(229, 300, 5), "RGB").quantize(200).save(f),
    "odd_255x257_gray.png": lambda f: Image.fromarray(picture(255, 257, 6), "RGB").convert("L").save(f),
}

model = getattr(torchvision.models, arch)()
model.load_state_dict(torch.load(ckpt))
model.eval()
resize_t = transforms.Resize(resize, interpolation=transforms.InterpolationMode(interp))
to_tensor = transforms.Compose([transforms.ToTensor(),
                                transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])


def views(img):
    if tta == "five-crop":
        return list(transforms.FiveCrop(crop)(resize_t(img)))
    eval_img = transforms.CenterCrop(crop)(resize_t(img))
    return [eval_img, transforms.functional.hflip(eval_img)] if tta == "flip" else [eval_img]

result = {}
for name, write in images.items():
    path = os.path.join(out, name)
    write(path)
    x = torch.stack([to_tensor(v) for v in views(Image.open(path).convert("RGB"))])
    with torch.no_grad():
        p = torch.softmax(model(x), 1).mean(0)
    result[name] = {"probs": p.tolist(), "top5": torch.topk(p, 5).indices.tolist()}
json.dump(result, open(os.path.join(out, "probs.json"), "w"))
