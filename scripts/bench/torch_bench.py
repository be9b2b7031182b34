#!/usr/bin/python3
"""PyTorch's side of `finetune bench --torch`: the same ResNet-18 workloads in eager torchvision.

Run with Debian's own interpreter (the python3 first on PATH may lack torch):
    /usr/bin/python3 scripts/bench/torch_bench.py --shapes 32x224,128x64 --iters 10 --warmup 3 --threads 2

Workloads, all on torchvision.models.resnet18() (random init) with fc -> Linear(512, 10), SGD(lr 0.01, momentum 0.9)
over the trainable parameters, cross-entropy on random labels, loss.item() every step (as the Java side syncs):
  inference        model.eval(), torch.no_grad()
  full-step        everything trains, model.train()
  full-step-frozen-bn  everything trains, every BN in eval mode (batchnorm: freeze-stats), NCHW
  full-step-bf16-mixed  full-step's forward under torch.autocast("cpu", dtype=torch.bfloat16), logits converted to
                   float32 for the loss (train.precision: bf16-mixed); not in the default list (needs bf16 instructions)
  frozen-step      only fc trains, every BN in eval mode (linear probe)
  last-stage-step  layer4 + fc train, BN in eval mode except layer4's

Each (workload, shape) runs in a fresh subprocess (`--one`) so that its peak RSS (VmHWM from /proc/self/status at
the end) is its own. Before each one the script waits for an idle machine, and it repeats (up to 3 times) a run in
which other processes used more than --max-foreign-load percent of the CPU (from /proc/stat minus this process's own
/proc/self/stat), keeping the least disturbed. Prints one JSON object on stdout: {"torch_version", "threads",
"results": [...]}, each result {"workload", "batch", "size", "threads", "times_ms", "setup_rss_kb", "peak_rss_kb",
"foreign_cpu_percent", "kernel_cpu_percent", "minor_faults_per_iteration"} (CPU and faults over the timed iterations).

    --workloads ts-inference,ts-full-step   the same network as one TorchScript graph (traced as --trace does)
                  run by this torch: with the Java side's ts-* rows it tells the libtorch version's share apart.
    --trace DIR   writes DIR/resnet18_eval.pt (traced in eval mode) and DIR/resnet18_train.pt (traced in train
                  mode: BN uses batch statistics) -- the same network as one TorchScript graph, for the Java side
                  to load in libtorch 2.7.1. Tracing bakes each BN's training flag in, hence two archives.
"""
import argparse
import json
import subprocess
import sys
import time

import torch
import torch.nn.functional as F
import torchvision

WORKLOADS = ["inference", "full-step", "full-step-frozen-bn", "frozen-step", "last-stage-step"]
CLASSES = 10


def vm_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(field + " not in /proc/self/status")


def cpu_ticks():
    """(machine busy ticks, machine total ticks, own user ticks, own system ticks, own minor faults)."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:9]]
    busy = sum(fields) - fields[3] - fields[4]
    with open("/proc/self/stat") as f:
        own = f.read().rsplit(")", 1)[1].split()  # own[0] is field 3: minflt 10, utime 14, stime 15
    return busy, sum(fields), int(own[11]), int(own[12]), int(own[7])


def foreign_percent(a, b):
    total = b[1] - a[1]
    if total <= 0:
        return 0.0
    own = (b[2] + b[3]) - (a[2] + a[3])
    return max(0.0, 100.0 * ((b[0] - a[0]) - own) / total)


def kernel_percent(a, b):
    own = (b[2] + b[3]) - (a[2] + a[3])
    return 100.0 * (b[3] - a[3]) / own if own > 0 else 0.0


def wait_until_idle(threshold, max_wait=1800):
    deadline = time.time() + max_wait
    told = False
    while True:
        a = cpu_ticks()
        time.sleep(2)
        b = cpu_ticks()
        busy = 100.0 * (b[0] - a[0]) / max(1, b[1] - a[1])
        if busy <= threshold or time.time() > deadline:
            return
        if not told:
            print("torch_bench: machine %.0f%% busy; waiting for it to go idle" % busy, file=sys.stderr, flush=True)
            told = True
        time.sleep(8)


def build(workload):
    torch.manual_seed(0)
    model = torchvision.models.resnet18()
    model.fc = torch.nn.Linear(512, CLASSES)
    if workload == "inference":
        model.eval()
        return model, None
    if workload in ("full-step", "full-step-bf16-mixed"):
        model.train()
    elif workload == "full-step-frozen-bn":
        model.eval()  # every parameter still requires grad; BN uses its running statistics
    elif workload == "frozen-step":
        for p in model.parameters():
            p.requires_grad_(False)
        for p in model.fc.parameters():
            p.requires_grad_(True)
        model.eval()
    elif workload == "last-stage-step":
        for p in model.parameters():
            p.requires_grad_(False)
        for module in (model.layer4, model.fc):
            for p in module.parameters():
                p.requires_grad_(True)
        model.eval()
        model.layer4.train()
    elif workload in ("ts-inference", "ts-full-step"):
        # The graph the Java side's TorchScript rows run on libtorch 2.7.1 (traced as --trace does), here on this
        # torch: separates what the libtorch version costs from what our layer costs. Not in the default list.
        train = workload == "ts-full-step"
        model.train(train)
        model = torch.jit.trace(model, torch.randn(2, 3, 64, 64), check_trace=False)
        if not train:
            return model, None
    else:
        raise SystemExit("unknown workload " + workload)
    trainable = [p for p in model.parameters() if p.requires_grad]
    return model, torch.optim.SGD(trainable, lr=0.01, momentum=0.9)


def run_one(workload, batch, size, iters, warmup, threads):
    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)
    model, optimizer = build(workload)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(batch, 3, size, size, generator=gen)
    y = torch.randint(0, CLASSES, (batch,), generator=gen)
    setup_rss = vm_kb("VmRSS")
    before = cpu_ticks()
    times = []
    for i in range(warmup + iters):
        t0 = time.perf_counter()
        if optimizer is None:
            with torch.no_grad():
                model(x)
        else:
            optimizer.zero_grad(set_to_none=True)
            if workload == "full-step-bf16-mixed":
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    logits = model(x)
                loss = F.cross_entropy(logits.float(), y)
            else:
                loss = F.cross_entropy(model(x), y)
            loss.item()
            loss.backward()
            optimizer.step()
        t1 = time.perf_counter()
        if i >= warmup:
            times.append((t1 - t0) * 1e3)
        if i == warmup - 1:
            before = cpu_ticks()
    after = cpu_ticks()
    return {
        "workload": workload,
        "batch": batch,
        "size": size,
        "threads": torch.get_num_threads(),
        "times_ms": times,
        "setup_rss_kb": setup_rss,
        "peak_rss_kb": vm_kb("VmHWM"),
        "foreign_cpu_percent": foreign_percent(before, after),
        "kernel_cpu_percent": kernel_percent(before, after),
        "minor_faults_per_iteration": (after[4] - before[4]) // max(1, iters),
    }


def trace(out_dir):
    import os

    os.makedirs(out_dir, exist_ok=True)
    torch.manual_seed(0)
    model = torchvision.models.resnet18()
    model.fc = torch.nn.Linear(512, CLASSES)
    example = torch.randn(2, 3, 64, 64)
    for mode in ("eval", "train"):
        model.train(mode == "train")
        traced = torch.jit.trace(model, example, check_trace=False)
        traced.save(os.path.join(out_dir, "resnet18_" + mode + ".pt"))
    print(json.dumps({"torch_version": torch.__version__, "dir": out_dir}))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", default="32x224,128x64", help="BATCHxSIZE list")
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-foreign-load", type=float, default=10.0,
                    help="percent of the CPU other processes may use during a run (100: no waiting or repeats)")
    ap.add_argument("--one", nargs=3, metavar=("WORKLOAD", "BATCH", "SIZE"), help=argparse.SUPPRESS)
    ap.add_argument("--trace", metavar="DIR")
    a = ap.parse_args()
    if a.trace:
        trace(a.trace)
        return
    if a.one:
        r = run_one(a.one[0], int(a.one[1]), int(a.one[2]), a.iters, a.warmup, a.threads)
        print(json.dumps(r))
        return
    results = []
    for shape in a.shapes.split(","):
        batch, size = (int(v) for v in shape.lower().split("x"))
        for workload in a.workloads.split(","):
            cmd = [sys.executable, __file__, "--one", workload, str(batch), str(size),
                   "--iters", str(a.iters), "--warmup", str(a.warmup), "--threads", str(a.threads)]
            guard = a.max_foreign_load < 100
            best = None
            for attempt in range(3 if guard else 1):
                if guard:
                    wait_until_idle(a.max_foreign_load)
                done = subprocess.run(cmd, capture_output=True, text=True)
                if done.returncode != 0:
                    sys.stderr.write(done.stderr)
                    raise SystemExit("torch_bench: %s %dx%d failed (exit %d)"
                                     % (workload, batch, size, done.returncode))
                r = json.loads(done.stdout.strip().splitlines()[-1])
                times = sorted(r["times_ms"])
                print("torch %-20s %dx%d %8.1f ms median, peak RSS %.0f MB, other processes %.0f%% CPU"
                      % (workload, batch, size, times[len(times) // 2], r["peak_rss_kb"] / 1024.0,
                         r["foreign_cpu_percent"]), file=sys.stderr, flush=True)
                if best is None or r["foreign_cpu_percent"] < best["foreign_cpu_percent"]:
                    best = r
                if r["foreign_cpu_percent"] <= a.max_foreign_load:
                    break
            results.append(best)
    print(json.dumps({"torch_version": torch.__version__, "threads": a.threads, "results": results}))


if __name__ == "__main__":
    main()
