"""Writes toolkit-core's sgd_step.pt: PyTorch's SGD update (torch.optim.SGD's single-tensor loop, torch 1.13) over
all of an optimizer's parameters in one TorchScript call.

Why a TorchScript file: DJL 0.36's JNI has no `add(other, alpha=...)`, so the same update written with NDArrays needs a
separate multiplication, and a parameter-sized temporary, for each of weight decay, Nesterov momentum and the learning
rate: 8 passes over every parameter and 5 allocations where PyTorch makes 5 passes and 2, plus about eight JNI calls per
parameter. Here the ops are PyTorch's own, in PyTorch's order, with the same roundings (`a + alpha * b` is a product
rounded, then a sum, in ATen's add kernel as in the NDArray version), so the result is the same to the bit
(dev.finetune.optim.SgdStepTest); the gradients are zeroed in the same call.

Arguments: params, grads, momentum buffers (empty when momentum is 0; a parameter's buffer is filled from its first
update when first[i] is true, as torch.optim.SGD's clone), lrs and weight decays per parameter, momentum, dampening,
nesterov. Returns the number of parameters updated.

Run with Debian's python3 (torch 1.13); the archive loads in DJL's libtorch 2.x.
  /usr/bin/python3 scripts/torchscript/make_sgd_step.py
"""
import os
from typing import List

import torch


class SgdStep(torch.nn.Module):
    def forward(self, params: List[torch.Tensor], grads: List[torch.Tensor], bufs: List[torch.Tensor],
                first: List[bool], lrs: List[float], wds: List[float], momentum: float, dampening: float,
                nesterov: bool) -> int:
        for i in range(len(params)):
            param = params[i]
            d_p = grads[i]
            if wds[i] != 0:
                d_p = d_p.add(param, alpha=wds[i])
            if momentum != 0:
                buf = bufs[i]
                if first[i]:
                    buf.copy_(d_p)
                else:
                    buf.mul_(momentum).add_(d_p, alpha=1 - dampening)
                if nesterov:
                    d_p = d_p.add(buf, alpha=momentum)
                else:
                    d_p = buf
            param.add_(d_p, alpha=-lrs[i])
            grads[i].zero_()
        return len(params)


if __name__ == "__main__":
    out = os.path.join(os.path.dirname(__file__), "..", "..", "toolkit-core", "src", "main", "resources", "dev",
                       "finetune", "optim", "sgd_step.pt")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    torch.jit.script(SgdStep()).save(os.path.normpath(out))
    print(os.path.normpath(out), os.path.getsize(out), "bytes, torch", torch.__version__)
