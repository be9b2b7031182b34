#!/usr/bin/python3
"""torchvision's side of the AutoAugment parity test: every op of TrivialAugmentWide and RandAugment at every
magnitude bin and both signs, on PIL images, as torchvision 0.14 applies them (NEAREST, fill None); and ColorJitter's
hue adjustment (F.adjust_hue) at 41 factors in [-0.5, 0.5].

    /usr/bin/python3 scripts/reference/autoaugment_reference.py OUT_DIR

Writes, into OUT_DIR: images.u8 (the inputs, raw RGB, one after another), outputs.u8 (every result, raw RGB, one
after another), index.json ({"images": [[w, h], ...], "cases": [[policy, op, bin, sign, image, magnitude], ...],
"tables": {policy: {op: [magnitudes]}}}); then DONE.
"""
import json
import os
import sys

import numpy
import PIL.Image
import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms.autoaugment import RandAugment, TrivialAugmentWide, _apply_op

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rng = numpy.random.default_rng(0)
images = []
for (w, h) in [(32, 32), (37, 29)]:
    yy, xx = numpy.mgrid[0:h, 0:w]
    base = numpy.stack([xx * 255 // (w - 1), yy * 255 // (h - 1), (xx + yy) * 255 // (w + h - 2)], axis=-1)
    noise = rng.integers(-40, 41, size=(h, w, 3))
    arr = numpy.clip(base + noise, 0, 255).astype(numpy.uint8)
    images.append(PIL.Image.fromarray(arr, "RGB"))
tables = {}
for policy, space in (("ta_wide", TrivialAugmentWide()._augmentation_space(31)),
                      ("ra", RandAugment()._augmentation_space(31, (32, 32)))):
    tables[policy] = {op: ([float(v) for v in m] if m.ndim > 0 else []) for op, (m, signed) in space.items()}
cases = []
with open(os.path.join(out, "outputs.u8"), "wb") as f:
    for policy in ("ta_wide", "ra"):
        for i, img in enumerate(images):
            space = (TrivialAugmentWide()._augmentation_space(31) if policy == "ta_wide"
                     else RandAugment()._augmentation_space(31, (img.height, img.width)))
            for op, (mags, signed) in space.items():
                bins = range(31) if mags.ndim > 0 else [0]
                for b in bins:
                    for sign in ((1, -1) if signed else (1,)):
                        m = float(mags[b].item()) if mags.ndim > 0 else 0.0
                        m *= sign
                        res = _apply_op(img, op, m, interpolation=InterpolationMode.NEAREST, fill=None)
                        f.write(numpy.asarray(res.convert("RGB"), dtype=numpy.uint8).tobytes())
                        cases.append([policy, op, b, sign, i, m])
    # ColorJitter's hue (the other three adjustments are the ImageEnhance ops above): F.adjust_hue on PIL.
    from torchvision.transforms import functional as F
    for i, img in enumerate(images):
        for k in range(-10, 11):
            for m in (k / 20.0, k / 20.0 + 0.013):
                if -0.5 <= m <= 0.5:
                    res = F.adjust_hue(img, m)
                    f.write(numpy.asarray(res, dtype=numpy.uint8).tobytes())
                    cases.append(["jitter", "Hue", 0, 1, i, m])
with open(os.path.join(out, "images.u8"), "wb") as f:
    for img in images:
        f.write(numpy.asarray(img, dtype=numpy.uint8).tobytes())
with open(os.path.join(out, "index.json"), "w") as f:
    json.dump({"images": [[im.width, im.height] for im in images], "cases": cases, "tables": tables}, f)
open(os.path.join(out, "DONE"), "w").close()
