#!/usr/bin/python3
"""torchvision's side of the per-family training and export checks.

    /usr/bin/python3 scripts/reference/family_steps.py steps REF_DIR ARCH[,ARCH...] OUT_DIR
        From REF_DIR/ARCH.pth (written by families.py), three SGD steps (lr 0.01, momentum 0.9) on one fixed batch,
        dropout and stochastic depth off, for two policies:
          probe: everything frozen but the head (torchvision's last Linear), every BatchNorm in eval mode
          full:  everything trains, BatchNorm with frozen statistics (eval mode; batchnorm: freeze-stats), which
                 keeps three steps at batch 4 well conditioned (batch statistics over 1x1 maps amplify rounding
                 into different trajectories; BN's train mode is checked by families.py's train-mode forward)
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


def steps(ref, archs, out):
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    torch.set_num_threads(2)  # the test JVM waits for this script; single-threaded it costs a minute
    x = torch.randn(4, 3, 32, 32)
    y = torch.tensor([3, 1, 4, 1])
    x.numpy().astype("<f4").tofile(os.path.join(out, "steps_x.f32"))
    y.numpy().astype("<i8").tofile(os.path.join(out, "steps_y.i64"))
    for arch in archs:
        for policy in ("probe", "full"):
            model = getattr(torchvision.models, arch)()
            model.load_state_dict(torch.load(os.path.join(ref, arch + ".pth")))
            quiet(model)
            model.train()
            head = head_name(model)
            if policy == "probe":
                for name, p in model.named_parameters():
                    p.requires_grad = name.startswith(head + ".")
            for m in model.modules():
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.eval()
            before = [p.detach().clone() for p in model.parameters()]
            params = [p for p in model.parameters() if p.requires_grad]
            opt = torch.optim.SGD(params, lr=0.01, momentum=0.9)
            losses = []
            for _ in range(3):
                opt.zero_grad()
                loss = torch.nn.functional.cross_entropy(model(x), y)
                loss.backward()
                opt.step()
                losses.append(loss.item())
            numpy.array(losses, dtype="<f4").tofile(os.path.join(out, "%s_%s_loss.f32" % (arch, policy)))
            update = []
            for b, p in zip(before, model.parameters()):
                d = (p.detach() - b).double()
                update += [d.sum().item(), (d * d).sum().item()]
            numpy.array(update, dtype="<f8").tofile(os.path.join(out, "%s_%s_update.f64" % (arch, policy)))
            w = dict(model.named_parameters())[head + ".weight"].detach()
            w.numpy().astype("<f4").tofile(os.path.join(out, "%s_%s_head.f32" % (arch, policy)))
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
    else:
        load(sys.argv[2], sys.argv[3].split(","))
