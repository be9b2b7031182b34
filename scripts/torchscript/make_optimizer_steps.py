"""Writes toolkit-core's sgd_step.pt and adam_step.pt: torch.optim.SGD's and torch.optim.Adam/AdamW's updates
(their single-tensor loops in torch 1.13) over all of an optimizer's parameters, each in one TorchScript call; and
ema_step.pt, the weight EMA's update after a step (timm's ModelEmaV2) and its swap with the model's weights.

Why TorchScript files: DJL 0.36's JNI has no `add(other, alpha=...)`, `addcmul_` or `addcdiv_`, so the same updates
written with NDArrays need a separate multiplication, and a parameter-sized temporary, for every scaled term: SGD with
weight decay and Nesterov momentum makes 8 passes over every parameter and 5 allocations where PyTorch makes 5 and 2,
Adam about 14 passes where PyTorch makes 9, plus several JNI calls per parameter. Here the ops are PyTorch's own, in
PyTorch's order; the results equal the NDArray versions' to within float32 rounding (a fused `a + alpha * b` rounds
once where a product then a sum rounds twice; dev.finetune.optim.ScriptedUpdateTest), and both match torch.optim
(GroupedOptimizerParityTest). The gradients are zeroed in the same call. Neither module holds state: parameters,
gradients and the optimizer's buffers are arguments, updated in place.

SGD arguments: params, grads, momentum buffers (empty when momentum is 0; a parameter's buffer is filled from its
update when first[i] is true, as torch.optim.SGD's clone), per-parameter lrs and weight decays, momentum, dampening,
nesterov.
Adam arguments: params, grads, exp_avgs, exp_avg_sqs, per-parameter step counts (this update's, already counted),
lrs and weight decays, beta1, beta2, eps, decoupled (AdamW's decay of the weights instead of L2 in the gradient).
Both return the number of parameters updated.
EMA arguments: averages, the model's tensors, decay, swap. Without swap: ema = decay * ema + (1 - decay) * w in
ModelEmaV2's order of operations (so the same float32 roundings as timm and as the NDArray version); with swap, each
pair exchanges its values in place (validation and ema.safetensors run on the averages, and a second swap restores
the model bit for bit, with no host copies). Returns the number of pairs.

Run with Debian's python3 (torch 1.13); the archives load in DJL's libtorch 2.x.
  /usr/bin/python3 scripts/torchscript/make_optimizer_steps.py
"""
import math
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


class AdamStep(torch.nn.Module):
    def forward(self, params: List[torch.Tensor], grads: List[torch.Tensor], exp_avgs: List[torch.Tensor],
                exp_avg_sqs: List[torch.Tensor], steps: List[int], lrs: List[float], wds: List[float], beta1: float,
                beta2: float, eps: float, decoupled: bool) -> int:
        for i in range(len(params)):
            param = params[i]
            grad = grads[i]
            lr = lrs[i]
            if wds[i] != 0:
                if decoupled:
                    param.mul_(1 - lr * wds[i])
                else:
                    grad = grad.add(param, alpha=wds[i])
            exp_avg = exp_avgs[i]
            exp_avg_sq = exp_avg_sqs[i]
            exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
            exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            bias_correction1 = 1 - beta1 ** steps[i]
            bias_correction2 = 1 - beta2 ** steps[i]
            step_size = lr / bias_correction1
            denom = (exp_avg_sq.sqrt() / math.sqrt(bias_correction2)).add_(eps)
            param.addcdiv_(exp_avg, denom, value=-step_size)
            grads[i].zero_()
        return len(params)


class EmaStep(torch.nn.Module):
    def forward(self, averages: List[torch.Tensor], tensors: List[torch.Tensor], decay: float, swap: bool) -> int:
        for i in range(len(averages)):
            average = averages[i]
            tensor = tensors[i]
            if swap:
                held = tensor.clone()
                tensor.copy_(average)
                average.copy_(held)
            else:
                scaled = tensor * (1.0 - decay)
                average.mul_(decay).add_(scaled)
        return len(averages)


if __name__ == "__main__":
    folder = os.path.join(os.path.dirname(__file__), "..", "..", "toolkit-core", "src", "main", "resources", "dev",
                          "finetune", "optim")
    os.makedirs(folder, exist_ok=True)
    for name, module in (("sgd_step.pt", SgdStep()), ("adam_step.pt", AdamStep()), ("ema_step.pt", EmaStep())):
        out = os.path.normpath(os.path.join(folder, name))
        torch.jit.script(module).save(out)
        print(out, os.path.getsize(out), "bytes, torch", torch.__version__)
