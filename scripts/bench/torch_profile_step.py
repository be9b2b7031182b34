#!/usr/bin/python3
"""PyTorch 1.13's side of an op-by-op comparison: the full fine-tune step of `finetune bench`'s full-step workload
(torchvision resnet18, fc -> Linear(512, 10), SGD lr 0.01 momentum 0.9, cross-entropy on random labels, model.train()),
timed over 6 steps after 3 warm-up ones, then libtorch's profiler over 4 steps: self CPU time per op per step, the
largest first. Compare with `./finetune bench --workloads full-step --batch B --size S --profile` (ours and, with
--torch, the TorchScript graph's). Run with Debian's interpreter, optionally on the allocator ours runs on:

    /usr/bin/python3 scripts/bench/torch_profile_step.py 128 64
    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 /usr/bin/python3 scripts/bench/torch_profile_step.py 128 64
"""
import sys
import time

import torch
import torch.nn.functional as F
import torchvision
from torch.profiler import ProfilerActivity, profile


def main():
    torch.set_num_threads(2)
    batch, size = int(sys.argv[1]), int(sys.argv[2])
    model = torchvision.models.resnet18()
    model.fc = torch.nn.Linear(512, 10)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, 3, size, size)
    y = torch.randint(0, 10, (batch,))

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    for _ in range(3):
        step()
    times = []
    for _ in range(6):
        t = time.perf_counter()
        step()
        times.append((time.perf_counter() - t) * 1000)
    print("step ms:", [round(t) for t in times])
    with profile(activities=[ProfilerActivity.CPU]) as p:
        for _ in range(4):
            step()
    for e in sorted(p.key_averages(), key=lambda e: -e.self_cpu_time_total)[:16]:
        print("%8.1f ms  %s" % (e.self_cpu_time_total / 1000 / 4, e.key))


if __name__ == "__main__":
    main()
