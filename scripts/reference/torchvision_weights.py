#!/usr/bin/python3
"""torchvision's own weight tables, as the toolkit's torchvision-weights.properties lists them.

    /usr/bin/python3 scripts/reference/torchvision_weights.py ARCH[,ARCH...] [OUT_FILE]

For each ARCH and each of its weights enums (torchvision.models.get_model_weights) prints one line
    ARCH[:WEIGHTS] = FILE RESIZE CROP INTERPOLATION
where the bare ARCH is IMAGENET1K_V1 (what pretrained=True loads) and FILE carries torch.hub's SHA-256 prefix.
"""
import sys

import torchvision.models as models

lines = []
for arch in sys.argv[1].split(","):
    for w in models.get_model_weights(arch):
        t = w.transforms()
        if list(t.mean) != [0.485, 0.456, 0.406] or list(t.std) != [0.229, 0.224, 0.225]:
            raise SystemExit("%s %s: not ImageNet mean/std" % (arch, w.name))
        key = arch if w.name == "IMAGENET1K_V1" else arch + ":" + w.name
        lines.append("%s = %s %d %d %s" % (key, w.url.rsplit("/", 1)[1], t.resize_size[0], t.crop_size[0],
                                          t.interpolation.value))
text = "\n".join(lines) + "\n"
if len(sys.argv) > 2:
    with open(sys.argv[2], "w") as f:
        f.write(text)
else:
    sys.stdout.write(text)
