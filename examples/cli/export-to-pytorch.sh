#!/usr/bin/env bash
# Take a fine-tuned model back to PyTorch: export a torchvision state_dict and load it with torch.load(weights_only=True).
# Usage: examples/cli/export-to-pytorch.sh RUN_DIR   (needs Debian's python3-torchvision for the check)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
RUN="$1"
./finetune export --checkpoint "$RUN" --format pth --out "$RUN/model.pth"
/usr/bin/python3 - "$RUN/model.pth" <<'PY'
import json, sys, torch, torchvision
side = json.load(open(sys.argv[1] + ".json"))
model = torchvision.models.resnet18(num_classes=side["num_classes"])
model.load_state_dict(torch.load(sys.argv[1], weights_only=True))
print("loaded into torchvision.models.resnet18(num_classes=%d); classes %s" % (side["num_classes"], side["class_names"]))
PY
