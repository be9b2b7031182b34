#!/usr/bin/python3
"""PyTorch's own float32 and bfloat16 outputs of ResNet feature extractors, for Bf16PrefixTest.

    /usr/bin/python3 scripts/reference/bf16_reference.py REPO_ROOT OUT_DIR

Two realistic weight sets: resnet18 with models/resnet18-fmnist-a.safetensors (trained weights, read here without
the safetensors package, by equivalence_reference.read_safetensors), and resnet50 with torchvision's
initialization and BN statistics calibrated on random batches plus uniform affine values (written as resnet50.pth).
For each, for inputs (2, 3, S, S), S in 32, 64, 97, and (1, 3, 224, 224): the layer4 output (the input of the
average pool) in float32 (eval, NCHW) and in bfloat16 (model.to(torch.bfloat16), channels-last, as PyTorch users run
it on CPU). Raw little-endian float32 files NAME_S_{input,fp32,bf16}.f32. Writes DONE last.
"""
import os
import sys

import torch
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from equivalence_reference import read_safetensors  # noqa: E402  (the same reader, no safetensors package)

root, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
torch.set_num_threads(2)


def features(model, x):
    m = model
    x = m.maxpool(m.relu(m.bn1(m.conv1(x))))
    return m.layer4(m.layer3(m.layer2(m.layer1(x))))


r18 = torchvision.models.resnet18(num_classes=5)
state = read_safetensors(os.path.join(root, "models", "resnet18-fmnist-a.safetensors"))
state = {k: v for k, v in state.items() if k in r18.state_dict()}
missing = [k for k in r18.state_dict() if k not in state and not k.endswith("num_batches_tracked")]
assert not missing, missing
r18.load_state_dict(state, strict=False)

torch.manual_seed(1)
r50 = torchvision.models.resnet50()
with torch.no_grad():
    r50.train()
    for _ in range(3):
        r50(torch.randn(4, 3, 64, 64))
    for m in r50.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.weight.uniform_(0.5, 1.5)
            m.bias.uniform_(-0.2, 0.2)
torch.save(r50.state_dict(), os.path.join(out, "resnet50.pth"))

for name, model in (("resnet18", r18), ("resnet50", r50)):
    model.eval()
    bf = torchvision.models.__dict__[name](num_classes=model.fc.out_features)
    bf.load_state_dict(model.state_dict())
    bf = bf.eval().to(torch.bfloat16).to(memory_format=torch.channels_last)
    torch.manual_seed(2)
    for side, batch in ((32, 2), (64, 2), (97, 2), (224, 1)):
        x = torch.randn(batch, 3, side, side)
        with torch.no_grad():
            fp = features(model, x)
            b = features(bf, x.to(torch.bfloat16).contiguous(memory_format=torch.channels_last)).float()
        for kind, t in (("input", x), ("fp32", fp), ("bf16", b)):
            t.contiguous().numpy().astype("<f4").tofile(os.path.join(out, "%s_%d_%s.f32" % (name, side, kind)))
        print(name, side, "bf16 vs fp32 max|diff| %.4g, max|fp32| %.4g" % ((b - fp).abs().max(), fp.abs().max()))
open(os.path.join(out, "DONE"), "w").write("ok\n")
