"""Writes toolkit-core's folded_resnet.pt: a TorchScript module that runs a BN-folded ResNet prefix, in bfloat16 or in
float32, in one call.

Why a TorchScript file at all:
- bfloat16: DJL 0.36's PyTorch JNI cannot hold a bfloat16 tensor (toType(BFLOAT16) aborts the process in native
  code), so a bf16 path cannot be written with NDArrays. This module takes and returns float32 tensors only; every
  bf16 tensor lives and dies inside libtorch (dev.finetune.model.Bf16Prefix).
- float32: DJL's JNI has no in-place ReLU and keeps every op result alive until its NDArray is closed; here ReLU and
  the residual add run in place and each intermediate is freed by libtorch's reference count the moment it is dead,
  as in PyTorch's eager ResNet (dev.finetune.model.FoldedPrefix's scripted path, checked by GuardedPrefix).
It is generic: the network is a program of ints and a list of folded weights that dev.finetune.model.FoldedPrefix
builds from the model, so one file serves every ResNet depth and weight set, and no user code or weight is ever
scripted.

Arguments: x (float32 NCHW), weights, program, bf16 (compute in bfloat16), layouts (per conv: 1 = run it on
channels-last input, 0 = on contiguous NCHW; a guard may have found channels-last wrong for some stages).

Program (a flat list of ints), conv c meaning weights[2c] (OIHW) and weights[2c+1] (bias):
  0 c stride pad                       stem: conv, max-pool 3/2/1, ReLU (a few images at a time: _stem)
  1 n down (c stride pad groups)*n [c stride pad if down]
                                       residual unit: convs with ReLU between them, identity or the downsample
                                       conv, add, ReLU

Run with Debian's python3 (torch 1.13); the archive loads in DJL's libtorch 2.x.
  /usr/bin/python3 scripts/torchscript/make_folded_resnet_runner.py
"""
import os
from typing import List

import torch


def _layout(h: torch.Tensor, channels_last: int) -> torch.Tensor:
    if channels_last == 1:
        return h.contiguous(memory_format=torch.channels_last)
    return h.contiguous()


def _stem(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, s: int, p: int,
          channels_last: int) -> torch.Tensor:
    """conv, max-pool 3/2/1, ReLU, a few images at a time: the convolution's output is the prefix's largest map (103 MB
    for 32 images at 224, four times its pooled output), and each image's rows are computed alone anyway (frozen
    statistics), so only about 16 MiB of it is ever alive; each pooled piece is copied into the output. 16 MiB measured
    as fast as the whole batch at once and as 32 MiB pieces; 8 MiB pieces were 2 % slower at 32x224."""
    chunk_bytes = 16 << 20
    n = x.size(0)
    oh = (x.size(2) + 2 * p - weight.size(2)) // s + 1
    ow = (x.size(3) + 2 * p - weight.size(3)) // s + 1
    per_image = weight.size(0) * oh * ow * x.element_size()
    chunk = max(1, chunk_bytes // per_image)
    if chunk >= n:
        h = torch.conv2d(_layout(x, channels_last), weight, bias, [s, s], [p, p], [1, 1], 1)
        return torch.max_pool2d(h, [3, 3], [2, 2], [1, 1], [1, 1], False).relu_()
    out = torch.empty(0)
    start = 0
    while start < n:
        end = min(n, start + chunk)
        h = torch.conv2d(_layout(x[start:end], channels_last), weight, bias, [s, s], [p, p], [1, 1], 1)
        h = torch.max_pool2d(h, [3, 3], [2, 2], [1, 1], [1, 1], False).relu_()
        if start == 0:
            shape = [n, h.size(1), h.size(2), h.size(3)]
            if channels_last == 1:
                out = torch.empty(shape, dtype=h.dtype, memory_format=torch.channels_last)
            else:
                out = torch.empty(shape, dtype=h.dtype)
        out[start:end].copy_(h)
        start = end
    return out


class FoldedResNet(torch.nn.Module):
    def forward(self, x: torch.Tensor, weights: List[torch.Tensor], program: List[int], bf16: bool,
                layouts: List[int]) -> torch.Tensor:
        w: List[torch.Tensor] = []
        h = x
        if bf16:
            for t in weights:
                w.append(t.to(torch.bfloat16))
            h = x.to(torch.bfloat16)
        else:
            w = weights
        i = 0
        while i < len(program):
            op = program[i]
            if op == 0:
                c = program[i + 1]
                s = program[i + 2]
                p = program[i + 3]
                h = _stem(h, w[2 * c], w[2 * c + 1], s, p, layouts[c])
                i += 4
            elif op == 1:
                n = program[i + 1]
                down = program[i + 2]
                i += 3
                y = h
                for k in range(n):
                    c = program[i]
                    s = program[i + 1]
                    p = program[i + 2]
                    g = program[i + 3]
                    i += 4
                    y = torch.conv2d(_layout(y, layouts[c]), w[2 * c], w[2 * c + 1], [s, s], [p, p], [1, 1], g)
                    if k < n - 1:
                        y = y.relu_()
                identity = h
                if down == 1:
                    c = program[i]
                    s = program[i + 1]
                    p = program[i + 2]
                    i += 3
                    identity = torch.conv2d(_layout(h, layouts[c]), w[2 * c], w[2 * c + 1], [s, s], [p, p], [1, 1], 1)
                h = y.add_(identity).relu_()
            else:
                raise RuntimeError("folded_resnet: unknown op " + str(op) + " at " + str(i))
        if bf16:
            h = h.float()
        return h.contiguous()


if __name__ == "__main__":
    out = os.path.join(os.path.dirname(__file__), "..", "..", "toolkit-core", "src", "main", "resources", "dev",
                       "finetune", "model", "folded_resnet.pt")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    torch.jit.script(FoldedResNet()).save(os.path.normpath(out))
    print(os.path.normpath(out), os.path.getsize(out), "bytes, torch", torch.__version__)
