#!/usr/bin/python3
"""PyTorch's stage outputs and logits of ResNet-18 for the equivalence matrix (EquivalenceMatrixTest).

Run with Debian's own interpreter (the python3 first on PATH may lack torch):
    /usr/bin/python3 scripts/reference/equivalence_reference.py EMBEDDED.safetensors OUT_DIR

Three weight sets, each written as a state_dict (torch.save) the Java side loads:
  init        torchvision's initialization (torch.manual_seed(0)), BN statistics at their defaults (mean 0, var 1)
  embedded    the toolkit's embedded pretrained model (models/resnet18-fmnist-a.safetensors, fp16 values), read here
              with a few lines of numpy (no safetensors package on Debian)
  randbn      torchvision's initialization with BN statistics and affine values far from the identity:
              weight, running_var uniform in [0.5, 2], bias, running_mean uniform in [-1, 1]

For each weight set and input side S in 32, 64, 97, 224: a (3, 3, S, S) standard-normal input and, in eval mode,
the output of every stage (stem = conv1/bn1/relu/maxpool, layer1..layer4) and the logits. A batch of 1 is the first
row of each (eval mode is per sample).

Writes OUT_DIR/NAME.pth, OUT_DIR/arrays/KEY.f32 (little-endian float32) and OUT_DIR/reference.json {KEY: shape}.
Keys: {weights}_{S}_{input|stem|layer1|layer2|layer3|layer4|logits}.
"""
import json
import os
import struct
import sys

import numpy as np
import torch
import torchvision


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    body = data[8 + n:]
    kinds = {"F16": np.float16, "F32": np.float32, "I64": np.int64, "BF16": None}
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        arr = np.frombuffer(body[start:end], dtype=kinds[info["dtype"]]).reshape(info["shape"])
        out[name] = torch.from_numpy(arr.astype(np.int64 if info["dtype"] == "I64" else np.float32).copy())
    return out


def weight_sets(embedded_path):
    torch.manual_seed(0)
    init = torchvision.models.resnet18()
    embedded_sd = read_safetensors(embedded_path)
    classes = embedded_sd["fc.weight"].shape[0]
    embedded = torchvision.models.resnet18(num_classes=classes)
    embedded.load_state_dict(embedded_sd)
    torch.manual_seed(1)
    randbn = torchvision.models.resnet18()
    with torch.no_grad():
        for m in randbn.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 2.0)
                m.bias.uniform_(-1.0, 1.0)
                m.running_mean.uniform_(-1.0, 1.0)
                m.running_var.uniform_(0.5, 2.0)
    return {"init": init, "embedded": embedded, "randbn": randbn}


def stages(model, x):
    out = {}
    x = model.maxpool(model.relu(model.bn1(model.conv1(x))))
    out["stem"] = x
    for i in range(1, 5):
        x = getattr(model, "layer%d" % i)(x)
        out["layer%d" % i] = x
    out["logits"] = model.fc(torch.flatten(model.avgpool(x), 1))
    return out


def main(embedded_path, out):
    os.makedirs(os.path.join(out, "arrays"), exist_ok=True)
    torch.set_num_threads(1)
    index = {}
    gen = torch.Generator().manual_seed(42)
    for name, model in weight_sets(embedded_path).items():
        model.eval()
        torch.save(model.state_dict(), os.path.join(out, name + ".pth"))
        for side in (32, 64, 97, 224):
            x = torch.randn(3, 3, side, side, generator=gen)
            with torch.no_grad():
                arrays = {"input": x, **stages(model, x)}
                full = model(x)
            assert torch.equal(full, arrays["logits"]), "stage split must equal model(x)"
            for k, v in arrays.items():
                key = "%s_%d_%s" % (name, side, k)
                v.detach().contiguous().numpy().astype("<f4").tofile(os.path.join(out, "arrays", key + ".f32"))
                index[key] = list(v.shape)
    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump({"torch": torch.__version__, "torchvision": torchvision.__version__, "arrays": index}, f)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
