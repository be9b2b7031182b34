#!/usr/bin/python3
"""PyTorch's side of ChannelsLastTrainingTest: ResNet-18 training steps in NCHW, in channels-last, and in float64.

Run with Debian's own interpreter (the python3 first on PATH may lack torch):
    /usr/bin/python3 scripts/reference/channels_last_steps.py CHECKPOINT SIZE:BATCH[,SIZE:BATCH...] OUT_DIR

From CHECKPOINT (a ResNet-18 safetensors file, read here with numpy; fp16 values become float32), per SIZE:BATCH one
batch of real images — the first BATCH Fashion-MNIST test images whose class is below the checkpoint's class count
(DATASET, default /usr/share/datasets/fashion-mnist), resized bilinearly to SIZE, as three channels normalized with
ImageNet's mean and std, written as x_SIZE.f32 — with their classes (y_SIZE.i64), and SGD (lr LR = 0.001, momentum 0.9)
under two policies, each in several arithmetics:
  frozen  everything trains, every BatchNorm in eval mode (batchnorm: freeze-stats); three steps
  bn      everything trains, every BatchNorm in train mode (batch statistics, running statistics updated); one step
          (train-mode BN at small batches turns float32 rounding into diverging trajectories within a few steps)
  nchw    float32, contiguous (both policies)
  cl      float32, model.to(memory_format=torch.channels_last) and the input stored channels-last (frozen only:
          train-mode BN never runs channels-last in the toolkit)
  f64     float64 NCHW (bn only): the exact answer the toolkit's NCHW step is measured from
The frozen runs use one thread, as the test JVM: channels-last's float32 rounding depends on the thread count (three frozen-statistics
steps at 4x96x96 part from NCHW by 0.43 % on one thread, 0.01 % on two).
Writes SIZE_POLICY_TAG_loss.f32 (losses), SIZE_POLICY_TAG_update.f64 (per parameter, state_dict order: the sum and the
sum of squares of its change), SIZE_frozen_gap.f64 (per parameter: PyTorch's own relative L2 difference between the
channels-last and the NCHW update), SIZE_bn_TAG_stats.f64 (per BatchNorm: sums of running_mean and running_var), then
DONE.
"""
import gzip
import os
import sys

import numpy as np
import torch
import torchvision

from trajectory_reference import read_safetensors  # same folder: the script's own directory is on sys.path

# Small enough that three steps from weights trained at 32x32 stay well conditioned at 224x224 (at 0.01 the loss
# explodes to ~3e4 by the third step, and the layouts part by chaos: PyTorch's own NCHW and channels-last too).
LR = 0.001


def fashion_mnist(dataset, batch, classes):
    with gzip.open(os.path.join(dataset, "t10k-images-idx3-ubyte.gz")) as f:
        images = np.frombuffer(f.read(), dtype=np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(os.path.join(dataset, "t10k-labels-idx1-ubyte.gz")) as f:
        labels = np.frombuffer(f.read(), dtype=np.uint8, offset=8)
    keep = np.nonzero(labels < classes)[0][:batch]
    return torch.from_numpy(images[keep].astype(np.float32) / 255), torch.from_numpy(labels[keep].astype(np.int64))


def fashion_mnist_batch(dataset, size, batch, classes):
    """The first `batch` test images of classes below `classes`, resized to size x size, 3 channels, normalized."""
    images, y = fashion_mnist(dataset, batch, classes)
    x = torch.nn.functional.interpolate(images[:, None], size=(size, size), mode="bilinear",
                                        align_corners=False).repeat(1, 3, 1, 1)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    return ((x - mean) / std).contiguous(), y


def batches(specs, out, classes, dataset):
    """Per SIZE:BATCH in specs: fashion_mnist_batch's images and classes, written as x_SIZE.f32 and y_SIZE.i64 into out
    (the tests read them back), then yielded as (size, x, y)."""
    for spec in specs.split(","):
        size, batch = (int(v) for v in spec.split(":"))
        x, y = fashion_mnist_batch(dataset, size, batch, classes)
        x.numpy().astype("<f4").tofile(os.path.join(out, "x_%d.f32" % size))
        y.numpy().astype("<i8").tofile(os.path.join(out, "y_%d.i64" % size))
        yield size, x, y


def run(state, classes, x, y, policy, tag, out, prefix):
    model = torchvision.models.resnet18(num_classes=classes)
    model.load_state_dict(state)
    model.train()
    if policy == "frozen":
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.eval()
    if tag == "f64":
        model = model.double()
        x = x.double()
    elif tag == "cl":
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    before = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9)
    losses = []
    for _ in range(3 if policy == "frozen" else 1):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    name = "%s_%s_%s" % (prefix, policy, tag)
    np.array(losses, dtype="<f4").tofile(os.path.join(out, name + "_loss.f32"))
    update = []
    deltas = []
    for b, p in zip(before, model.parameters()):
        d = (p.detach() - b).double()
        update += [d.sum().item(), (d * d).sum().item()]
        deltas.append(d.contiguous())
    np.array(update, dtype="<f8").tofile(os.path.join(out, name + "_update.f64"))
    if policy == "bn":
        stats = []
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                stats += [m.running_mean.double().sum().item(), m.running_var.double().sum().item()]
        np.array(stats, dtype="<f8").tofile(os.path.join(out, name + "_stats.f64"))
    return deltas


def main(checkpoint, specs, out, dataset="/usr/share/datasets/fashion-mnist"):
    os.makedirs(out, exist_ok=True)
    state = read_safetensors(checkpoint)
    classes = state["fc.weight"].shape[0]
    for size, x, y in batches(specs, out, classes, dataset):
        for policy in ("frozen", "bn"):
            deltas = {}
            # One thread where the layouts are compared (the test JVM's); two for the NCHW and float64 step of the bn
            # policy, whose rounding is far below the test's tolerance either way (the test waits for this script).
            torch.set_num_threads(1 if policy == "frozen" else 2)
            for tag in ("nchw", "f64") if policy == "bn" else ("nchw", "cl"):
                deltas[tag] = run(state, classes, x, y, policy, tag, out, str(size))
            if policy == "frozen":
                # PyTorch's own gap between the layouts: per parameter, |update_cl - update_nchw| / |update_nchw|.
                gap = [((c - n).norm() / n.norm().clamp_min(1e-30)).item()
                       for c, n in zip(deltas["cl"], deltas["nchw"])]
                np.array(gap, dtype="<f8").tofile(os.path.join(out, "%d_frozen_gap.f64" % size))
    open(os.path.join(out, "DONE"), "w").close()


if __name__ == "__main__":
    main(*sys.argv[1:])
