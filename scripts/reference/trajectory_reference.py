#!/usr/bin/python3
"""PyTorch's training trajectory for the toolkit's shipped freeze policies (TrajectoryParityTest).

Run with Debian's own interpreter (the python3 first on PATH may lack torch):
    /usr/bin/python3 scripts/reference/trajectory_reference.py IN_DIR OUT_DIR

IN_DIR (written by the Java test from a real `finetune train` run) holds:
  embedded.safetensors  the pretrained checkpoint the runs start from (read here with numpy; fp16 values)
  images.f32, labels.f32  the preprocessed training images (N, 3, S, S) and labels, in data set order
  RUN.json              per run: {"policy": NAME, "fc_weight"/"fc_bias": the new head's initial values (flat),
                        "classes": C, "side": S, "lr": base lr, "momentum": m, "steps": [{"indices": [...],
                        "lr": base lr of that step, "epoch": e}], "unfreeze": [{"at_epoch", "modules", "lr_mult"}]}

Each run is replayed with torch.optim.SGD under the policy's semantics, written here independently of the toolkit:
which parameters train (requires_grad), which BatchNorm layers are in eval mode (a frozen BN keeps its statistics
under batchnorm: auto; every BN keeps them under freeze-stats; every BN updates them under train), and gradual
unfreezing as optimizer.add_param_group({'params': newly trainable, 'lr': lr * lr_mult}).

Writes OUT_DIR/RUN/result.json (losses, tensor shapes) and OUT_DIR/RUN/NAME.f32 for every state_dict entry training can
change: the trainable parameters and the running statistics of BatchNorm layers that were in train mode.
"""
import json
import os
import struct
import sys

import numpy as np
import torch
import torchvision

STAGES = ["conv1", "bn1", "layer1", "layer2", "layer3", "layer4", "fc"]


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    body = data[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        dtype = {"F16": np.float16, "F32": np.float32, "I64": np.int64}[info["dtype"]]
        arr = np.frombuffer(body[start:end], dtype=dtype).reshape(info["shape"])
        out[name] = torch.from_numpy(arr.astype(np.int64 if dtype == np.int64 else np.float32).copy())
    return out


def module_of(name):
    return name.split(".")[0]


# Which top-level modules train, and the BatchNorm setting, per shipped policy (configs/policies/*.yaml).
POLICIES = {
    "linear-probe": ({"fc"}, "auto"),
    "last-stage": ({"layer4", "fc"}, "auto"),
    "last-two-stages": ({"layer3", "layer4", "fc"}, "auto"),  # frozen_stages: 2 = conv1, bn1, layer1, layer2
    "full": (set(STAGES), "auto"),
    "full-frozen-bn": (set(STAGES), "freeze-stats"),
    "bn-train-frozen-backbone": ({"fc"}, "train"),
}


def set_bn_modes(model, bn_setting, updating):
    """Train mode, then eval mode for the BN layers that keep their statistics; records the ones that update."""
    model.train()
    for name, m in model.named_modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            if bn_setting != "train" and (bn_setting == "freeze-stats" or not m.weight.requires_grad):
                m.eval()
            else:
                updating.add(name)


def replay(run, inputs, labels, state):
    policy, bn_setting = POLICIES[run["policy"]]
    model = torchvision.models.resnet18(num_classes=run["classes"])
    sd = dict(state)
    sd["fc.weight"] = torch.tensor(run["fc_weight"], dtype=torch.float32).reshape(run["classes"], 512)
    sd["fc.bias"] = torch.tensor(run["fc_bias"], dtype=torch.float32)
    model.load_state_dict(sd)
    trainable = set(policy)
    for name, p in model.named_parameters():
        p.requires_grad = module_of(name) in trainable
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=run["lr"], momentum=run["momentum"])
    groups_mult = [1.0]
    losses = []
    updating = set()
    applied = 0
    for step in run["steps"]:
        while applied < len(run["unfreeze"]) and run["unfreeze"][applied]["at_epoch"] <= step["epoch"]:
            u = run["unfreeze"][applied]
            new = [p for n, p in model.named_parameters() if module_of(n) in u["modules"] and not p.requires_grad]
            for p in new:
                p.requires_grad = True
            opt.add_param_group({"params": new, "lr": step["lr"] * u["lr_mult"]})
            groups_mult.append(u["lr_mult"])
            applied += 1
        for g, mult in zip(opt.param_groups, groups_mult):
            g["lr"] = step["lr"] * mult
        set_bn_modes(model, bn_setting, updating)
        idx = torch.tensor(step["indices"])
        x = inputs[idx]
        y = labels[idx]
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    # What training can change: the trainable parameters and the statistics of BN layers in train mode. The rest is
    # the initial state, which the toolkit checks bit for bit itself (frozen_tensors_bit_identical).
    changed = {n for n, p in model.named_parameters() if p.requires_grad}
    for m in updating:
        changed |= {m + ".running_mean", m + ".running_var"}
    return losses, {k: v for k, v in model.state_dict().items() if k in changed}


def main(src, out):
    torch.set_num_threads(2)
    meta = json.load(open(os.path.join(src, "data.json")))
    inputs = torch.from_numpy(np.fromfile(os.path.join(src, "images.f32"), dtype="<f4").reshape(meta["images"]))
    labels = torch.from_numpy(np.fromfile(os.path.join(src, "labels.f32"), dtype="<f4").astype(np.int64))
    state = read_safetensors(os.path.join(src, "embedded.safetensors"))
    for run_file in sorted(f for f in os.listdir(src) if f.startswith("run-") and f.endswith(".json")):
        run = json.load(open(os.path.join(src, run_file)))
        name = run_file[len("run-"):-len(".json")]
        losses, sd = replay(run, inputs, labels, state)
        d = os.path.join(out, name)
        os.makedirs(d, exist_ok=True)
        index = {}
        for k, v in sd.items():
            if k.endswith("num_batches_tracked"):
                continue
            v.detach().contiguous().numpy().astype("<f4").tofile(os.path.join(d, k + ".f32"))
            index[k] = list(v.shape)
        json.dump({"losses": losses, "tensors": index}, open(os.path.join(d, "result.json"), "w"))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
