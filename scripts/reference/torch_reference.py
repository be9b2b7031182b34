#!/usr/bin/python3
"""Reference values from torchvision for the Java parity tests.

Run with Debian's own interpreter (the python3 first on PATH may lack torch):
    /usr/bin/python3 scripts/reference/torch_reference.py OUT_DIR

Writes, into OUT_DIR:
  resnet18.pth          a real torchvision resnet18 state_dict (torch.save, zip format) with non-trivial BN stats
  arrays/NAME.f32       raw little-endian float32 arrays, described by reference.json {name: shape}
  reference.json
Arrays:
  input                 (2, 3, 224, 224) fixed input
  eval_logits           model.eval()(input)
  train_logits          model.train()(input) on a fresh copy (batch statistics)
  train_running_mean_bn1 / train_running_var_bn1 / train_running_var_layer4.1.bn2
                        running stats of that copy after the one train-mode forward (momentum 0.1, unbiased var)
  seed_fc0_weight/bias  the new head's initial values for the seed recipe
  seed_x / seed_y       the batch for the seed recipe (4, 3, 64, 64) and labels (as float)
  seed_fc3_weight/bias  fc after 3 SGD steps (lr 0.01, momentum 0.9): backbone frozen, frozen BN in eval mode
  seed_losses           the 3 losses
"""
import json
import os
import sys

import torch
import torchvision


def main(out):
    os.makedirs(os.path.join(out, "arrays"), exist_ok=True)
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = torchvision.models.resnet18()
    # Give BatchNorm real statistics and affine values, so eval and train mode really differ.
    with torch.no_grad():
        model.train()
        for _ in range(3):
            model(torch.randn(4, 3, 64, 64) * 2 + 0.5)
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    torch.save(model.state_dict(), os.path.join(out, "resnet18.pth"))

    arrays = {}
    x = torch.randn(2, 3, 224, 224)
    arrays["input"] = x
    model.eval()
    with torch.no_grad():
        arrays["eval_logits"] = model(x)

    train_copy = torchvision.models.resnet18()
    train_copy.load_state_dict(torch.load(os.path.join(out, "resnet18.pth")))
    train_copy.train()
    with torch.no_grad():
        arrays["train_logits"] = train_copy(x)
    arrays["train_running_mean_bn1"] = train_copy.bn1.running_mean.clone()
    arrays["train_running_var_bn1"] = train_copy.bn1.running_var.clone()
    arrays["train_running_var_layer4.1.bn2"] = train_copy.layer4[1].bn2.running_var.clone()

    # The seed's recipe: freeze everything, new fc = Linear(512, 100), SGD(lr=0.01, momentum=0.9) over fc only.
    seed = torchvision.models.resnet18()
    seed.load_state_dict(torch.load(os.path.join(out, "resnet18.pth")))
    for p in seed.parameters():
        p.requires_grad = False
    torch.manual_seed(1)
    seed.fc = torch.nn.Linear(512, 100)
    arrays["seed_fc0_weight"] = seed.fc.weight.detach().clone()
    arrays["seed_fc0_bias"] = seed.fc.bias.detach().clone()
    seed.train()
    for m in seed.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.eval()  # frozen BN keeps its statistics (the toolkit's default for a frozen BN)
    opt = torch.optim.SGD([p for p in seed.parameters() if p.requires_grad], lr=0.01, momentum=0.9)
    sx = torch.randn(4, 3, 64, 64)
    sy = torch.tensor([3, 17, 42, 99])
    losses = []
    for _ in range(3):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(seed(sx), sy)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    arrays["seed_x"] = sx
    arrays["seed_y"] = sy.float()
    arrays["seed_fc3_weight"] = seed.fc.weight.detach().clone()
    arrays["seed_fc3_bias"] = seed.fc.bias.detach().clone()
    arrays["seed_losses"] = torch.tensor(losses)

    index = {}
    for name, t in arrays.items():
        t = t.detach().contiguous().float()
        t.numpy().astype("<f4").tofile(os.path.join(out, "arrays", name + ".f32"))
        index[name] = list(t.shape)
    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump({"torch": torch.__version__, "torchvision": torchvision.__version__, "arrays": index}, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1])
