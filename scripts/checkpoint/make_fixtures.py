#!/usr/bin/python3
"""Write small PyTorch checkpoints, and the values they hold, for the Java checkpoint tests.

Usage: /usr/bin/python3 make_fixtures.py OUTPUT_DIR

Run it with Debian's /usr/bin/python3 (torch 1.13, torchvision 0.14): the point is that the files come from the real
torch.save, not from our own writer. Besides the checkpoints it writes expected.json, which the Java tests compare
against exactly (fp32 values are written as Python floats, which hold every fp32 value exactly).

The malicious fixtures are only pickled here, never loaded: pickling a __reduce__ result does not call it.
"""
import builtins
import hashlib
import json
import os
import pickletools
import sys
import zipfile
from collections import OrderedDict

import torch
import torchvision

# Spelling of torch dtypes in safetensors, which is what HostTensor.sourceDtype uses.
DTYPES = {
    torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
    torch.bool: "BOOL",
}


def describe(t):
    return {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "values": t.float().flatten().tolist()}


def fp32_sha256(t):
    return hashlib.sha256(t.float().contiguous().numpy().astype("<f4").tobytes()).hexdigest()


def pickle_globals(path):
    """module.name of every global a torch.save zip's data.pkl references, as the file spells them."""
    with zipfile.ZipFile(path) as z:
        name = next(n for n in z.namelist() if n.endswith("/data.pkl"))
        found = []
        for op, arg, _ in pickletools.genops(z.read(name)):
            if op.name == "GLOBAL":
                found.append(arg.replace(" ", "."))
        return found


def small_state_dict():
    torch.manual_seed(1234)
    sd = OrderedDict()
    sd["f32"] = torch.randn(2, 3)
    # Values chosen to hit fp16 corners: the largest finite, a subnormal, a negative zero.
    sd["f16"] = torch.tensor([1.5, -2.25, 65504.0, 6.1035156e-05, 5.9604645e-08, -0.0], dtype=torch.float16)
    sd["bf16"] = torch.randn(4).to(torch.bfloat16)
    sd["f64"] = torch.tensor([0.1, -1e300, 3.0], dtype=torch.float64)
    sd["i64"] = torch.tensor([0, -7, 3000000000, 2 ** 40], dtype=torch.int64)
    sd["i32"] = torch.tensor([-2147483648, 5], dtype=torch.int32)
    sd["i16"] = torch.tensor([-32768, 32767], dtype=torch.int16)
    sd["i8"] = torch.tensor([-128, 127], dtype=torch.int8)
    sd["u8"] = torch.tensor([0, 200, 255], dtype=torch.uint8)
    sd["bool"] = torch.tensor([True, False, True])
    sd["num_batches_tracked"] = torch.tensor(42)  # a 0-dim int64, as BatchNorm keeps it
    # A transposed tensor saved as is: torch stores the untransposed storage and strides (1, 4).
    sd["transposed"] = torch.randn(3, 4).t()
    assert not sd["transposed"].is_contiguous()
    # Two tensors over one storage: the view starts at element 5 with strides (4, 1).
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4) * 0.25 - 1
    sd["base"] = base
    sd["view"] = base[1:, 1:3]
    assert sd["view"].storage_offset() == 5 and sd["view"].data_ptr() != base.data_ptr()
    sd["empty"] = torch.zeros(0, 3)
    sd["param"] = torch.nn.Parameter(torch.tensor([0.5, -0.5]))
    return sd


class EvilSystem:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, ("touch " + self.marker,))


class EvilExec:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (builtins.exec, ("open(%r, 'w').close()" % self.marker,))


def main(out):
    os.makedirs(out, exist_ok=True)
    expected = {"torch_version": torch.__version__}

    sd = small_state_dict()
    torch.save(sd, os.path.join(out, "state_dict.pth"))
    with zipfile.ZipFile(os.path.join(out, "state_dict.pth")) as z:
        storages = [n for n in z.namelist() if "/data/" in n]
    assert len(storages) == len(sd) - 1, "base and view must share one storage"
    expected["state_dict"] = OrderedDict((k, describe(v.detach())) for k, v in sd.items())

    small = OrderedDict((k, sd[k]) for k in ("f32", "i64", "num_batches_tracked"))
    torch.save({"state_dict": small, "epoch": 3, "best_acc": 0.75}, os.path.join(out, "wrapped.pth"))
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": 7},
               os.path.join(out, "wrapped_model.pth"))
    expected["wrapped"] = OrderedDict((k, describe(v)) for k, v in small.items())
    expected["wrapped_model"] = OrderedDict((k, describe(v)) for k, v in model.state_dict().items())

    torch.save(small, os.path.join(out, "legacy.pth"), _use_new_zipfile_serialization=False)
    torch.jit.script(torch.nn.Linear(2, 2)).save(os.path.join(out, "torchscript.pt"))

    marker = os.path.join(out, "MARKER")
    malicious = {}
    for name, payload in (("malicious_os_system.pth", EvilSystem(marker)), ("malicious_exec.pth", EvilExec(marker))):
        path = os.path.join(out, name)
        torch.save({"weight": torch.ones(2), "payload": payload}, path)
        unexpected = [g for g in pickle_globals(path) if not g.startswith(("torch.", "collections."))]
        assert len(unexpected) == 1, unexpected
        malicious[name] = unexpected[0]
    assert not os.path.exists(marker), "pickling must not run the payload"
    expected["malicious"] = malicious
    expected["marker"] = marker

    torch.manual_seed(0)
    resnet = torchvision.models.resnet18().state_dict()
    torch.save(resnet, os.path.join(out, "resnet18.pth"))
    expected["resnet18"] = OrderedDict(
        (k, {"dtype": DTYPES[v.dtype], "shape": list(v.shape), "sha256": fp32_sha256(v)}) for k, v in resnet.items())

    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: /usr/bin/python3 make_fixtures.py OUTPUT_DIR")
    main(sys.argv[1])
