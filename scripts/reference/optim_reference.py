#!/usr/bin/python3
"""Reference trajectories from torch.optim for the Java optimizer parity test (GroupedOptimizerParityTest).

Run with Debian's own interpreter (the python3 first on PATH may lack torch):
    /usr/bin/python3 scripts/reference/optim_reference.py OUT.json

A tiny fixed problem: four parameter tensors with fixed initial values and a fixed gradient for each of 5 steps (the
Java side feeds the same gradients through autograd as d/dp sum(p * g) = g). Each case runs one torch.optim optimizer
with several parameter groups and a base learning rate that changes every step (a schedule), and records every
parameter after every step and the optimizer state after the last one.

The torch param groups of each case are written out by hand below: they are what the toolkit's config is documented to
mean (the `settings` block is that config), not something derived from the toolkit's code:
  - weight decay applies to >= 2-d tensors; 1-d tensors (biases, norm parameters) get none unless
    decay_norm_and_bias is true;
  - a matching group sets its lr_mult and, when given, its weight_decay for every tensor it matches.

Output JSON:
  torch          torch version
  steps, lrs     number of steps, base learning rate at each step
  shapes         name -> shape
  init           name -> flat initial values
  grads          name -> [flat gradient for step 1..steps]
  cases          case -> {settings, after: name -> [flat values after step 1..steps],
                          state: name -> {momentum_buffer | exp_avg, exp_avg_sq, step}}
Values are float32 tensors written with .tolist() (exact as doubles).
"""
import json
import os
import sys

import torch

SHAPES = {"body.weight": (4, 3), "body.bias": (4,), "head.weight": (2, 4), "head.bias": (2,)}
STEPS = 5
LRS = [0.1, 0.08, 0.06, 0.05, 0.02]

ALL = list(SHAPES)


def group(names, lr_mult, weight_decay):
    return {"params": names, "lr_mult": lr_mult, "weight_decay": weight_decay}


# settings: the optimizer config as the toolkit reads it; groups: the torch param groups that config means.
CASES = {
    "sgd_momentum": {
        "settings": {"name": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 0.01,
                     "groups": [{"match": "head.*", "lr_mult": 0.5, "weight_decay": 0.001}]},
        "groups": [group(["body.weight"], 1.0, 0.01), group(["body.bias"], 1.0, 0.0),
                   group(["head.weight", "head.bias"], 0.5, 0.001)],
    },
    "sgd_nesterov": {
        "settings": {"name": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01,
                     "groups": [{"match": "head", "lr_mult": 0.5}]},
        "groups": [group(["body.weight"], 1.0, 0.01), group(["body.bias"], 1.0, 0.0),
                   group(["head.weight"], 0.5, 0.01), group(["head.bias"], 0.5, 0.0)],
    },
    "sgd_dampening": {
        "settings": {"name": "sgd", "lr": 0.1, "momentum": 0.8, "dampening": 0.3, "weight_decay": 0.02,
                     "decay_norm_and_bias": True,
                     "groups": [{"match": "*.bias", "lr_mult": 2.0, "weight_decay": 0.0}]},
        "groups": [group(["body.weight", "head.weight"], 1.0, 0.02), group(["body.bias", "head.bias"], 2.0, 0.0)],
    },
    "sgd_plain": {
        "settings": {"name": "sgd", "lr": 0.1, "weight_decay": 0.05,
                     "groups": [{"match": "re:^head\\.", "lr_mult": 3.0}]},
        "groups": [group(["body.weight"], 1.0, 0.05), group(["body.bias"], 1.0, 0.0),
                   group(["head.weight"], 3.0, 0.05), group(["head.bias"], 3.0, 0.0)],
    },
    "adam": {
        "settings": {"name": "adam", "lr": 0.1, "weight_decay": 0.01, "betas": [0.8, 0.99], "eps": 1e-6,
                     "groups": [{"match": "head.*", "lr_mult": 0.5, "weight_decay": 0.001}]},
        "groups": [group(["body.weight"], 1.0, 0.01), group(["body.bias"], 1.0, 0.0),
                   group(["head.weight", "head.bias"], 0.5, 0.001)],
    },
    "adamw": {
        "settings": {"name": "adamw", "lr": 0.1, "weight_decay": 0.05,
                     "groups": [{"match": "head.*", "lr_mult": 0.5, "weight_decay": 0.0}]},
        "groups": [group(["body.weight"], 1.0, 0.05), group(["body.bias"], 1.0, 0.0),
                   group(["head.weight", "head.bias"], 0.5, 0.0)],
    },
    "adamw_decay_all": {
        "settings": {"name": "adamw", "lr": 0.1, "weight_decay": 0.1, "decay_norm_and_bias": True,
                     "groups": [{"match": "head.*", "lr_mult": 3.0}]},
        "groups": [group(["body.weight", "body.bias"], 1.0, 0.1), group(["head.weight", "head.bias"], 3.0, 0.1)],
    },
}


def flat(t):
    return t.detach().reshape(-1).tolist()


def run(case, init, grads):
    s = case["settings"]
    params = {n: torch.nn.Parameter(init[n].clone()) for n in ALL}
    groups = [{"params": [params[n] for n in g["params"]], "weight_decay": g["weight_decay"]} for g in case["groups"]]
    mults = [g["lr_mult"] for g in case["groups"]]
    if s["name"] == "sgd":
        opt = torch.optim.SGD(groups, lr=s["lr"], momentum=s.get("momentum", 0.0),
                              dampening=s.get("dampening", 0.0), nesterov=s.get("nesterov", False))
    else:
        cls = torch.optim.Adam if s["name"] == "adam" else torch.optim.AdamW
        opt = cls(groups, lr=s["lr"], betas=tuple(s.get("betas", (0.9, 0.999))), eps=s.get("eps", 1e-8))
    after = {n: [] for n in ALL}
    for step in range(STEPS):
        for g, m in zip(opt.param_groups, mults):
            g["lr"] = LRS[step] * m
        for n in ALL:
            params[n].grad = grads[n][step].clone()
        opt.step()
        for n in ALL:
            after[n].append(flat(params[n]))
    state = {}
    for n in ALL:
        st = opt.state[params[n]]
        out = {}
        for k in ("momentum_buffer", "exp_avg", "exp_avg_sq"):
            if k in st and st[k] is not None:
                out[k] = flat(st[k])
        if "step" in st:
            out["step"] = int(st["step"])
        else:
            out["step"] = STEPS
        state[n] = out
    return {"settings": s, "after": after, "state": state}


def main(out):
    torch.manual_seed(20240607)
    init = {n: (torch.randn(SHAPES[n]) * 0.5).float() for n in ALL}
    grads = {n: [torch.randn(SHAPES[n]).float() for _ in range(STEPS)] for n in ALL}
    result = {
        "torch": torch.__version__,
        "steps": STEPS,
        "lrs": LRS,
        "shapes": {n: list(SHAPES[n]) for n in ALL},
        "init": {n: flat(init[n]) for n in ALL},
        "grads": {n: [flat(g) for g in grads[n]] for n in ALL},
        "cases": {name: run(case, init, grads) for name, case in CASES.items()},
    }
    with open(out, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: optim_reference.py OUT.json | OUT_DIR")
    target = sys.argv[1]
    if not target.endswith(".json"):
        os.makedirs(target, exist_ok=True)
        target = os.path.join(target, "optim_reference.json")
    main(target)
