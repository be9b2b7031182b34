#!/usr/bin/python3
"""Runs the preprocessing recipe of an export sidecar (`finetune export` writes MODEL.json) on images, as a PyTorch
user would copy it, and writes the input tensor it gives for each.

    /usr/bin/python3 scripts/reference/check_recipe.py MODEL.json IMAGE OUT.f32 [IMAGE OUT.f32 ...]

OUT.f32: raw little-endian float32 (3, H, W). Prints one shape per image.
"""
import json
import sys

import numpy as np

sidecar, pairs = sys.argv[1], sys.argv[2:]
prep = json.load(open(sidecar))["preprocessing"]
exec(prep["torchvision_imports"])  # noqa: S102 - the sidecar's own import line, as a user would paste it
for f, out in zip(pairs[0::2], pairs[1::2]):
    x = eval(prep["torchvision"])  # noqa: S307 - the recipe refers to the image path as `f`
    np.ascontiguousarray(x.numpy().astype("<f4")).tofile(out)
    print(tuple(x.shape), x.dtype)
