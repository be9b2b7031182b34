"""Writes toolkit-core's resnet_train.pt: a TorchScript module that runs the trainable part of a ResNet (any depth,
ResNeXt, Wide ResNet) forward with autograd in one call, in float32 or in bfloat16 mixed precision (train.precision:
bf16-mixed, dev.finetune.model.ResNetTrainScript).

Why a TorchScript file: DJL 0.36's PyTorch JNI cannot hold a bfloat16 tensor (toType(BFLOAT16) aborts the process in
native code), so mixed precision cannot be written with NDArrays. This module takes float32 tensors (the input, the
parameters, the BatchNorm running statistics) and returns float32 logits; every bfloat16 tensor lives and dies inside
libtorch, and autograd carries the gradients back to the float32 parameters through the casts, as under PyTorch's
torch.autocast. It is generic: the network is a program of ints that dev.finetune.model.ResNetTrainScript records from
the model, so one file serves every ResNet and weight set, and no user code or weight is ever scripted.

bf16 follows torch.autocast("cpu", dtype=torch.bfloat16) in PyTorch 1.13 on torchvision's ResNet: convolutions and the
final Linear cast their input and weights to bfloat16 and return bfloat16; BatchNorm, max-pool, ReLU, the residual
add and the average pool run on those bfloat16 activations (BatchNorm with its float32 affine parameters and float32
running statistics); the logits are converted to float32 for the loss.

Arguments, all tensors (DJL passes tensors and lists of tensors to a TorchScript method that records autograd):
x (float32 NCHW), params (parameters by index), stats (running statistics by index), program (int64), scalars (float64:
BatchNorm momentum, BatchNorm eps, the dropout probability before the final Linear, 0 for none).

Program (int64): bf16 (1 = bfloat16 mixed precision), training (1 = BatchNorm layers flagged as training use batch
statistics and update their running ones, dropout is on), then ops; two registers, h (the main path) and r (the
residual path):
  0 w s p g          h = conv2d(h, params[w], stride s, padding p, groups g), no bias
  1 a m t relu       h = batch_norm(h, params[a], params[a+1], stats[m], stats[m+1], training and t == 1); relu if 1
  2                  h = max_pool2d(h, 3, 2, 1)
  3                  r = h
  4 w s p g          r = conv2d(r, params[w], ...)
  5 a m t            r = batch_norm(r, ...)
  6                  h = relu(h + r)
  7 w                h = linear(dropout(flatten(adaptive_avg_pool2d(h, 1))), params[w], params[w+1])

Run with Debian's python3 (torch 1.13); the archive loads in DJL's libtorch 2.x.
  /usr/bin/python3 scripts/torchscript/make_resnet_train_runner.py
"""
import os
from typing import List

import torch


class ResNetTrain(torch.nn.Module):
    def forward(self, x: torch.Tensor, params: List[torch.Tensor], stats: List[torch.Tensor], code: torch.Tensor,
                scalars: torch.Tensor) -> torch.Tensor:
        program: List[int] = code.tolist()
        values: List[float] = scalars.tolist()
        momentum = values[0]
        eps = values[1]
        dropout = values[2]
        bf16 = program[0] == 1
        training = program[1] == 1
        h = x.to(torch.bfloat16) if bf16 else x
        r = h
        i = 2
        while i < len(program):
            op = program[i]
            if op == 0 or op == 4:
                w = params[program[i + 1]]
                if bf16:
                    w = w.to(torch.bfloat16)
                s = program[i + 2]
                p = program[i + 3]
                src = h if op == 0 else r
                y = torch.conv2d(src, w, None, [s, s], [p, p], [1, 1], program[i + 4])
                if op == 0:
                    h = y
                else:
                    r = y
                i += 5
            elif op == 1 or op == 5:
                a = program[i + 1]
                m = program[i + 2]
                t = training and program[i + 3] == 1
                src = h if op == 1 else r
                y = torch.batch_norm(src, params[a], params[a + 1], stats[m], stats[m + 1], t, momentum, eps, False)
                if op == 1:
                    if program[i + 4] == 1:
                        y = y.relu_()
                    h = y
                    i += 5
                else:
                    r = y
                    i += 4
            elif op == 2:
                h = torch.max_pool2d(h, [3, 3], [2, 2], [1, 1], [1, 1], False)
                i += 1
            elif op == 3:
                r = h
                i += 1
            elif op == 6:
                h = h.add_(r).relu_()
                i += 1
            elif op == 7:
                w = params[program[i + 1]]
                b = params[program[i + 1] + 1]
                f = torch.flatten(torch.nn.functional.adaptive_avg_pool2d(h, [1, 1]), 1)
                if dropout > 0:
                    f = torch.dropout(f, dropout, training)
                if bf16:
                    w = w.to(torch.bfloat16)
                    b = b.to(torch.bfloat16)
                h = torch.nn.functional.linear(f, w, b)
                i += 2
            else:
                raise RuntimeError("resnet_train: unknown op " + str(op) + " at " + str(i))
        if bf16:
            h = h.float()
        return h


if __name__ == "__main__":
    out = os.path.join(os.path.dirname(__file__), "..", "..", "toolkit-core", "src", "main", "resources", "dev",
                       "finetune", "model", "resnet_train.pt")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    torch.jit.script(ResNetTrain()).save(os.path.normpath(out))
    print(os.path.normpath(out), os.path.getsize(out), "bytes, torch", torch.__version__)
