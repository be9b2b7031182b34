#!/usr/bin/python3
"""PyTorch's side of ResNetTrainScriptTest: one ResNet-18 training forward and backward (every BatchNorm in train mode,
no optimizer step) in float32, under torch.autocast("cpu", dtype=torch.bfloat16), and in float64.

Run with Debian's own interpreter (the python3 first on PATH may lack torch):
    /usr/bin/python3 scripts/reference/bf16_training_reference.py CHECKPOINT SIZE:BATCH[,SIZE:BATCH...] OUT_DIR

From CHECKPOINT (a ResNet-18 safetensors file), per SIZE:BATCH one batch of real Fashion-MNIST test images
(channels_last_steps.batches: resized bilinearly, three channels, ImageNet normalization) written as
x_SIZE.f32 and y_SIZE.i64, and per TAG in fp32, bf16, f64:
  SIZE_TAG_loss.f64   the cross-entropy loss (of float32 logits: autocast's are converted, as the toolkit does)
  SIZE_TAG_grad.f32   every parameter's gradient, named_parameters() order, concatenated
  SIZE_TAG_stats.f32  every BatchNorm's running_mean then running_var after the step, module order, concatenated
then DONE. Two threads, as the toolkit's default.
"""
import os
import sys

import numpy as np
import torch
import torchvision

from channels_last_steps import batches  # same folder: the script's own directory is on sys.path
from trajectory_reference import read_safetensors


def step(state, classes, x, y, tag):
    model = torchvision.models.resnet18(num_classes=classes)
    model.load_state_dict(state)
    model.train()
    if tag == "f64":
        model = model.double()
        logits = model(x.double())
    elif tag == "bf16":
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(x)
        logits = logits.float()
    else:
        logits = model(x)
    loss = torch.nn.functional.cross_entropy(logits, y)
    loss.backward()
    grads = torch.cat([p.grad.double().flatten() for p in model.parameters()])
    stats = []
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            stats += [m.running_mean.double(), m.running_var.double()]
    return loss.item(), grads, torch.cat(stats)


def main(checkpoint, specs, out, dataset="/usr/share/datasets/fashion-mnist"):
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(2)
    state = {k: torch.as_tensor(v) for k, v in read_safetensors(checkpoint).items()}
    classes = state["fc.weight"].shape[0]
    for size, x, y in batches(specs, out, classes, dataset):
        for tag in ("fp32", "bf16", "f64"):
            loss, grads, stats = step(state, classes, x, y, tag)
            name = "%d_%s" % (size, tag)
            np.array([loss], dtype="<f8").tofile(os.path.join(out, name + "_loss.f64"))
            grads.numpy().astype("<f4").tofile(os.path.join(out, name + "_grad.f32"))
            stats.numpy().astype("<f4").tofile(os.path.join(out, name + "_stats.f32"))
    open(os.path.join(out, "DONE"), "w").close()


if __name__ == "__main__":
    main(*sys.argv[1:])
