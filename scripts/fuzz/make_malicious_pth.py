#!/usr/bin/python3
"""Write .pth files that run code when torch.load(f, weights_only=False) or pickle.load opens them.

Usage: /usr/bin/python3 scripts/fuzz/make_malicious_pth.py OUTPUT_DIR MARKER

Every payload, if it ever ran, would create the file MARKER; the Java test (dev.finetune.fuzz.CodeExecutionTest)
reads each file with the toolkit and then checks that MARKER does not exist. Run it with Debian's /usr/bin/python3
(torch 1.13): the files must be what the real torch.save writes.

Nothing here is ever unpickled. Pickling only records what __reduce__ returns; it does not call it. To name the global
the reader must refuse, each file's data.pkl is scanned by pickle.Unpickler with a find_class that raises on the
first name outside the toolkit's allowlist (a copy of RestrictedUnpickler's), before any REDUCE could use it.

Writes OUTPUT_DIR/expected.json: {file name: the first refused global as module.name, or null for a legacy file}.
"""
import builtins
import io
import json
import os
import pickle
import subprocess
import sys
import zipfile
from collections import OrderedDict

import torch

STORAGES = ["Float", "Half", "BFloat16", "Double", "Long", "Int", "Short", "Char", "Byte", "Bool"]
DTYPES = ["float32", "float", "float16", "half", "bfloat16", "float64", "double", "int64", "long", "int32", "int",
          "int16", "short", "int8", "uint8", "bool"]
ALLOWED = ({"collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter",
            "torch._utils._rebuild_parameter_with_state", "torch.UntypedStorage", "torch.storage.UntypedStorage"}
           | {"torch.%sStorage" % s for s in STORAGES} | {"torch.cuda.%sStorage" % s for s in STORAGES}
           | {"torch." + d for d in DTYPES})


class Call:
    """Pickles as a call of fn(*args): what a hostile file does to run code on load."""

    def __init__(self, fn, *args):
        self.fn = fn
        self.args = args

    def __reduce__(self):
        return (self.fn, self.args)

    def __call__(self, *args):  # pickle requires the callable of a reduce tuple to look callable
        raise AssertionError("never called")


class Refused(Exception):
    pass


def first_refused_global(path):
    with zipfile.ZipFile(path) as z:
        name = next(n for n in z.namelist() if n.endswith("/data.pkl"))
        data = z.read(name)

    class Scan(pickle.Unpickler):
        def find_class(self, module, name):
            qualified = module + "." + name
            if qualified not in ALLOWED:
                raise Refused(qualified)
            return OrderedDict if qualified == "collections.OrderedDict" else (lambda *a, **k: None)

        def persistent_load(self, pid):
            return None

    try:
        Scan(io.BytesIO(data)).load()
    except Refused as e:
        return e.args[0]
    raise AssertionError(path + " has no global outside the allowlist")


def main(out, marker):
    os.makedirs(out, exist_ok=True)
    touch = "touch " + marker
    weights = OrderedDict([("fc.weight", torch.ones(2, 2)), ("fc.bias", torch.zeros(2))])
    system = Call(os.system, touch)

    payloads = {
        # The classic: os.system (pickled as posix.system on Linux).
        "os_system.pth": {"fc.weight": weights["fc.weight"], "payload": system},
        # builtins.exec of Python source (pickled as __builtin__.exec by protocol 2).
        "builtins_exec.pth": {"fc.weight": weights["fc.weight"],
                              "payload": Call(builtins.exec, "open(%r, 'w').close()" % marker)},
        # getattr(__import__('os'), 'system')(...): no dangerous name appears, only builtins.
        "builtins_getattr.pth": {"payload": Call(Call(builtins.getattr, Call(builtins.__import__, "os"), "system"),
                                                 touch)},
        "subprocess_popen.pth": {"payload": Call(subprocess.Popen, ["touch", marker])},
        # Gadgets inside torch itself, which a torch-flavoured allowlist might let through:
        # _load_from_bytes runs torch.load (weights_only=False in torch 1.x) on a nested legacy pickle ...
        "torch_load_from_bytes.pth": {"payload": Call(torch.storage._load_from_bytes, legacy_bytes(system))},
        # ... and torch._tensor._rebuild_from_type_v2(func, type, args, state), which torch's own weights_only
        # unpickler allows (checking func), calls func(*args).
        "torch_rebuild_from_type.pth": {"payload": Call(torch._tensor._rebuild_from_type_v2, os.system, object,
                                                        (touch,), {})},
        # Hidden where the reader would ignore it: a wrapped checkpoint's "optimizer" entry ...
        "hidden_in_wrapper.pth": {"state_dict": weights, "epoch": 3, "optimizer": system},
        # ... and the state_dict's own _metadata, which only becomes BUILD state of the OrderedDict.
        "hidden_in_metadata.pth": with_metadata(weights, {"": {"version": system}}),
    }
    for name, obj in payloads.items():
        torch.save(obj, os.path.join(out, name))
    # Protocol 4 spells globals with STACK_GLOBAL instead of GLOBAL, and without protocol 2's Python 2 names
    # (protocol 2 writes subprocess.Popen as commands.Popen).
    protocol4 = {
        "protocol4_os_system.pth": {"fc.weight": weights["fc.weight"], "payload": system},
        "protocol4_subprocess_popen.pth": {"payload": Call(subprocess.Popen, ["touch", marker])},
    }
    for name, obj in protocol4.items():
        torch.save(obj, os.path.join(out, name), pickle_protocol=4)

    expected = {name: first_refused_global(os.path.join(out, name)) for name in sorted(payloads) + sorted(protocol4)}
    # A legacy (pre-1.6) torch.save: refused as a format before its pickle is even looked at.
    torch.save({"payload": system}, os.path.join(out, "legacy.pth"), _use_new_zipfile_serialization=False)
    expected["legacy.pth"] = None

    assert not os.path.exists(marker), "pickling must not run the payload"
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)


def legacy_bytes(obj):
    buf = io.BytesIO()
    torch.save(obj, buf, _use_new_zipfile_serialization=False)
    return buf.getvalue()


def with_metadata(state_dict, metadata):
    sd = OrderedDict(state_dict)
    sd._metadata = metadata
    return sd


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: /usr/bin/python3 scripts/fuzz/make_malicious_pth.py OUTPUT_DIR MARKER")
    main(sys.argv[1], sys.argv[2])
