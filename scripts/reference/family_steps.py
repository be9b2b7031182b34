#!/usr/bin/python3
"""torchvision's side of the per-family training and export checks.

    /usr/bin/python3 scripts/reference/family_steps.py steps|steps-bn REF_DIR ARCH[,ARCH...] OUT_DIR
        From REF_DIR/ARCH.pth (written by families.py), three SGD steps (lr 0.01, momentum 0.9) on one fixed batch,
        dropout and stochastic depth off, for two policies (steps) or the third (steps-bn):
          probe: everything frozen but the head (torchvision's last Linear), every BatchNorm in eval mode
          full:  everything trains, BatchNorm with frozen statistics (eval mode; batchnorm: freeze-stats), which
                 keeps three steps at batch 4 well conditioned (batch statistics over 1x1 maps amplify rounding
                 into different trajectories; BN's train mode is checked by families.py's train-mode forward)
          bn:    everything trains, every BatchNorm in train mode (batch statistics, running statistics updated), on
                 a batch of 8 at 64x64 (steps_x64.f32, steps_y8.i64). One step, not three: from a random
                 initialization, train-mode BN at batch 8 makes the trajectory chaotic, so that PyTorch with one
                 thread and with two differs by 10 % in the third loss (resnext50_32x4d: 3.62 against 3.13) and
                 by 0.4 % in single parameters' first update. The step is written twice, ARCH_bn_* in float32 and
                 ARCH_bn64_* in float64 (the exact answer), so that the test can measure both implementations'
                 rounding from the same truth; also ARCH_bn_stats.f64 / ARCH_bn64_stats.f64: per BatchNorm (module
                 order) the sums of running_mean and of running_var after the step
        Writes OUT_DIR/steps_x.f32 (4, 3, 32, 32), steps_y.i64 (4 labels) and, per ARCH and policy,
        ARCH_POLICY_loss.f32 (3 losses), ARCH_POLICY_update.f64 (per parameter, state_dict order: the sum and the
        sum of squares of its change over the steps) and ARCH_POLICY_head.f32 (the head's weight after the steps),
        then DONE.

    /usr/bin/python3 scripts/reference/family_steps.py load DIR ARCH:CLASSES[,...]
        Loads DIR/ARCH.pth with torch.load(weights_only=True), strictly into torchvision.models.ARCH(num_classes=
        CLASSES), and writes DIR/ARCH_export_logits.f32: eval-mode logits for DIR/export_input.f32 (2, 3, 64, 64).
"""
import os
import sys

import numpy
import torch
import torchvision



def head_name(model):
    last = None
    for name, m in model.named_modules():
        if isinstance(m, torch.nn.Linear):
            last = name
    return last


def quiet(model):
    for m in model.modules():
        if isinstance(m, (torch.nn.Dropout, torchvision.ops.StochasticDepth)):
            m.p = 0.0


def run(ref, out, arch, policy, x, y, n, tag, dtype=torch.float32):
    model = getattr(torchvision.models, arch)()
    model.load_state_dict(torch.load(os.path.join(ref, arch + ".pth")))
    model.to(dtype)
    quiet(model)
    model.train()
    head = head_name(model)
    if policy == "probe":
        for name, p in model.named_parameters():
            p.requires_grad = name.startswith(head + ".")
    if policy != "bn":
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.eval()
    before = [p.detach().clone() for p in model.parameters()]
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=0.01, momentum=0.9)
    losses = []
    for _ in range(n):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    numpy.array(losses, dtype="<f4").tofile(os.path.join(out, "%s_%s_loss.f32" % (arch, tag)))
    update = []
    for b, p in zip(before, model.parameters()):
        d = (p.detach() - b).double()
        update += [d.sum().item(), (d * d).sum().item()]
    numpy.array(update, dtype="<f8").tofile(os.path.join(out, "%s_%s_update.f64" % (arch, tag)))
    w = dict(model.named_parameters())[head + ".weight"].detach()
    w.float().numpy().astype("<f4").tofile(os.path.join(out, "%s_%s_head.f32" % (arch, tag)))
    if policy == "bn":
        stats = []
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                stats += [m.running_mean.double().sum().item(), m.running_var.double().sum().item()]
        numpy.array(stats, dtype="<f8").tofile(os.path.join(out, "%s_%s_stats.f64" % (arch, tag)))


def steps(ref, archs, out, policies=("probe", "full")):
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    torch.set_num_threads(2)  # the test JVM waits for this script; single-threaded it costs a minute
    x32 = torch.randn(4, 3, 32, 32)
    y4 = torch.tensor([3, 1, 4, 1])
    x64 = torch.randn(8, 3, 64, 64)
    y8 = torch.tensor([3, 1, 4, 1, 5, 9, 2, 6])
    x32.numpy().astype("<f4").tofile(os.path.join(out, "steps_x.f32"))
    y4.numpy().astype("<i8").tofile(os.path.join(out, "steps_y.i64"))
    x64.numpy().astype("<f4").tofile(os.path.join(out, "steps_x64.f32"))
    y8.numpy().astype("<i8").tofile(os.path.join(out, "steps_y8.i64"))
    for arch in archs:
        for policy in policies:
            if policy == "bn":
                run(ref, out, arch, policy, x64, y8, 1, policy)
                # The same step in float64: the exact answer that both float32 implementations are measured from.
                run(ref, out, arch, policy, x64.double(), y8, 1, "bn64", torch.float64)
            else:
                run(ref, out, arch, policy, x32, y4, 3, policy)
    open(os.path.join(out, "DONE"), "w").close()


def load(d, specs):
    x = torch.from_numpy(numpy.fromfile(os.path.join(d, "export_input.f32"), dtype="<f4").reshape(2, 3, 64, 64))
    for spec in specs:
        arch, classes = spec.split(":")
        model = getattr(torchvision.models, arch)(num_classes=int(classes))
        state = torch.load(os.path.join(d, arch + ".pth"), weights_only=True)
        model.load_state_dict(state, strict=True)
        model.eval()
        with torch.no_grad():
            logits = model(x)
        logits.numpy().astype("<f4").tofile(os.path.join(d, arch + "_export_logits.f32"))


if __name__ == "__main__":
    if sys.argv[1] == "steps":
        steps(sys.argv[2], sys.argv[3].split(","), sys.argv[4])
    elif sys.argv[1] == "steps-bn":
        steps(sys.argv[2], sys.argv[3].split(","), sys.argv[4], ("bn",))
    else:
        load(sys.argv[2], sys.argv[3].split(","))
