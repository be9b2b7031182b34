#!/usr/bin/python3
"""PyTorch's own bf16 speed-up on this CPU, for comparison with `finetune bench`'s inference-bf16 (docs/performance.md).

    /usr/bin/python3 scripts/bench/torch_bf16_speed.py [THREADS]

torchvision's ResNet-18 in eval mode, a batch of 8 at 224: float32 NCHW and channels-last, and
model.to(torch.bfloat16) channels-last; prints seconds per batch (mean of 3 after one warm-up) and bf16's largest
logit difference from float32.
"""
import sys
import time

import torch
import torchvision

torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
torch.manual_seed(0)
model = torchvision.models.resnet18().eval()
x = torch.randn(8, 3, 224, 224)


def seconds(f, n=3):
    f()
    start = time.perf_counter()
    for _ in range(n):
        f()
    return (time.perf_counter() - start) / n


with torch.no_grad():
    fp32 = seconds(lambda: model(x))
    cl = model.to(memory_format=torch.channels_last)
    xcl = x.contiguous(memory_format=torch.channels_last)
    fp32_cl = seconds(lambda: cl(xcl))
    bf = torchvision.models.resnet18().eval()
    bf.load_state_dict(model.state_dict())
    bf = bf.to(torch.bfloat16).to(memory_format=torch.channels_last)
    xbf = xcl.to(torch.bfloat16)
    bf16 = seconds(lambda: bf(xbf))
    diff = (bf(xbf).float() - model(x)).abs().max().item()
print("float32 NCHW %.3f s, float32 channels-last %.3f s, bf16 channels-last %.3f s (%.2fx); max |logit diff| %.3g"
      % (fp32, fp32_cl, bf16, fp32_cl / bf16, diff))
