#!/usr/bin/python3
"""Load a .pth file written by the Java PthWriter the way a PyTorch user would, and print what torch sees.

Usage: /usr/bin/python3 load_with_torch.py FILE [--resnet18]

Loads with torch.load(f, weights_only=True), the restricted loader PyTorch recommends for untrusted files, and prints
a JSON object {name: {dtype, shape, values}} on stdout. With --resnet18 it instead loads the state_dict into
torchvision.models.resnet18() with strict=True (which rejects float num_batches_tracked, missing or extra keys) and
prints {name: {dtype, shape, sha256}} of the model's own state_dict afterwards.
"""
import hashlib
import json
import sys
from collections import OrderedDict

import torch

DTYPES = {
    torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
    torch.bool: "BOOL",
}


def main(path, resnet18):
    sd = torch.load(path, weights_only=True)
    if not isinstance(sd, OrderedDict):
        sys.exit("expected an OrderedDict, found " + type(sd).__name__)
    if resnet18:
        import torchvision
        model = torchvision.models.resnet18()
        model.load_state_dict(sd, strict=True)
        report = OrderedDict(
            (k, {"dtype": DTYPES[v.dtype], "shape": list(v.shape),
                 "sha256": hashlib.sha256(v.float().contiguous().numpy().astype("<f4").tobytes()).hexdigest()})
            for k, v in model.state_dict().items())
    else:
        report = OrderedDict(
            (k, {"dtype": DTYPES[v.dtype], "shape": list(v.shape), "values": v.float().flatten().tolist()})
            for k, v in sd.items())
    json.dump(report, sys.stdout)


if __name__ == "__main__":
    args = sys.argv[1:]
    if len(args) not in (1, 2) or (len(args) == 2 and args[1] != "--resnet18"):
        sys.exit("usage: /usr/bin/python3 load_with_torch.py FILE [--resnet18]")
    main(args[0], len(args) == 2)
