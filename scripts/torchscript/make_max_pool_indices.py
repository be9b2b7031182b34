"""Writes toolkit-core's max_pool_indices.pt: a TorchScript function that returns the argmax indices of a 2-D max
pool (torch.nn.functional.max_pool2d_with_indices's second output), computed on a channels-last copy of the input or
on the input as it is.

Why: DJL 0.36's JNI has max_pool2d but not its indices, and libtorch 2.7.1's max pool on contiguous NCHW input is a
scalar loop: 41 ms for a [128, 64, 32, 32] input on a 2-core AMD EPYC, against 23 ms for a channels-last copy, its
vectorized channels-last pool and the indices' copy back. dev.finetune.model.MaxPoolIndices takes these indices and
gathers the pooled values from the NCHW input with autograd on: the same values (each one is the input element the
pool selects) and the same gradient routing (max_pool2d's backward scatters each window's gradient to the same index).
The indices are flat positions in each H x W plane whatever the memory format, so the channels-last pool's and the
NCHW pool's must be equal element for element; MaxPoolIndices checks that on this host.

Arguments: x (float32, N C H W) and spec, an int64 tensor [kernel, stride, padding, channels_last, chunk] (square
windows; channels_last 1 pools channels-last copies, chunk images at a time, so that the copy is a few MB rather than
another map of the batch's size; 0 pools the input as it is). Returns int64 indices, contiguous N C OH OW, or an empty
tensor when channels_last is asked for an input that is not contiguous NCHW (already channels-last, say: then
libtorch's own pool is the fast one). No autograd inside: the caller calls it with training on (DJL's only way to run a
TorchScript method outside inference mode, so the indices are normal tensors that autograd may save) on a detached x.

Run with Debian's python3 (torch 1.13); the archive loads in DJL's libtorch 2.x.
  /usr/bin/python3 scripts/torchscript/make_max_pool_indices.py
"""
import os
from typing import Tuple

import torch
import torch.nn.functional as F


class MaxPoolIndices(torch.nn.Module):
    def forward(self, x: torch.Tensor, spec: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        kernel = [int(spec[0]), int(spec[0])]
        stride = [int(spec[1]), int(spec[1])]
        padding = [int(spec[2]), int(spec[2])]
        none = torch.empty([0], dtype=x.dtype)
        data = x.detach()
        n = data.size(0)
        if int(spec[3]) == 0:
            _, indices = F.max_pool2d_with_indices(data, kernel, stride, padding)
            return none, self._flat(indices.contiguous(), data)
        if not data.is_contiguous():
            return none, torch.empty([0], dtype=torch.long)
        chunk = max(1, int(spec[4]))
        out = torch.empty([0], dtype=torch.long)
        for start in range(0, n, chunk):
            part = data[start:min(start + chunk, n)].contiguous(memory_format=torch.channels_last)
            _, indices = F.max_pool2d_with_indices(part, kernel, stride, padding)
            if start == 0:
                out = torch.empty([n, indices.size(1), indices.size(2), indices.size(3)], dtype=torch.long)
            out[start:start + indices.size(0)].copy_(indices)
        if int(spec[5]) == 1:  # a simulated defect (tests): every index 0
            out.zero_()
        flat = self._flat(out, data)
        pooled = x.reshape([-1]).index_select(0, flat.view([-1])).view(out.size())
        return pooled, flat

    def _flat(self, indices: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Per-plane positions made positions in the whole flattened input (in place)."""
        planes = torch.arange(indices.size(0) * indices.size(1), dtype=torch.long) * (x.size(2) * x.size(3))
        return indices.add_(planes.view([indices.size(0), indices.size(1), 1, 1]))


if __name__ == "__main__":
    out = os.path.join(os.path.dirname(__file__), "..", "..", "toolkit-core", "src", "main", "resources", "dev",
                       "finetune", "model", "max_pool_indices.pt")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    torch.jit.script(MaxPoolIndices()).save(os.path.normpath(out))
    print(os.path.normpath(out), os.path.getsize(out), "bytes, torch", torch.__version__)
