#!/usr/bin/python3
"""Write the valid .pth seeds of the fuzz tests (toolkit-core/src/test/resources/fuzz/seed*.pth).

Usage: /usr/bin/python3 scripts/fuzz/make_seed_pth.py OUTPUT_DIR

Run it with Debian's /usr/bin/python3 (torch 1.13): the seeds must come from the real torch.save so that the mutations
start from the exact zip and pickle layout torch writes. The files are committed, so the fuzz counts do not depend on
the torch version installed; regenerate them only on purpose (the counts in SECURITY.md change with them).

The seeds are small on purpose: the smaller the file, the more of the random mutations land in the zip structure and
the pickle rather than in tensor values.
"""
import os
import sys
from collections import OrderedDict

import torch


def state_dict():
    torch.manual_seed(20240601)
    sd = OrderedDict()
    sd["conv1.weight"] = torch.randn(2, 1, 3, 3)
    sd["bn1.weight"] = torch.ones(2)
    sd["bn1.bias"] = torch.zeros(2)
    sd["bn1.running_mean"] = torch.randn(2)
    sd["bn1.running_var"] = torch.rand(2) + 0.5
    sd["bn1.num_batches_tracked"] = torch.tensor(7)  # 0-dim int64, as BatchNorm keeps it
    sd["fc.weight"] = torch.randn(3, 2).t()  # a transposed view: stride (1, 2)
    base = torch.arange(6, dtype=torch.float32)
    sd["fc.bias"] = base[1:4]  # a view at storage offset 1, sharing ...
    sd["fc.extra"] = base  # ... one storage with this tensor
    sd["half"] = torch.tensor([0.5, -2.0], dtype=torch.float16)
    return sd


def main(out):
    os.makedirs(out, exist_ok=True)
    sd = state_dict()
    torch.save(sd, os.path.join(out, "seed.pth"))
    small = OrderedDict((k, sd[k]) for k in ("bn1.weight", "bn1.num_batches_tracked"))
    torch.save({"state_dict": small, "epoch": 3, "best_acc": 0.5}, os.path.join(out, "seed_wrapped.pth"))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: /usr/bin/python3 scripts/fuzz/make_seed_pth.py OUTPUT_DIR")
    main(sys.argv[1])
