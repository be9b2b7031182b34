#!/usr/bin/env bash
# The offline quickstart: fine-tune a real pretrained ResNet-18 (models/resnet18-fmnist-a.safetensors) on 5 new
# classes with a frozen backbone, then evaluate, predict and export. Needs only JDK 17 + Maven; no network at run
# time (the first run builds the CLI with Maven).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
RUN="runs/quickstart-$(date +%Y%m%d-%H%M%S)"

echo "== inspect: what trains, what is frozen =="
./finetune inspect -c configs/quickstart.yaml --classes 5 | sed -n '/^trainable parameters/,$p'

echo "== train =="
./finetune train -c configs/quickstart.yaml --run-dir "$RUN" --quiet

echo "== evaluate on the held-out images =="
./finetune evaluate --checkpoint "$RUN" --data data/fashion-mnist-b

echo "== predict =="
./finetune predict --checkpoint "$RUN" --top-k 2 \
  data/fashion-mnist-b/val/sandal/00021.png data/fashion-mnist-b/val/bag/00018.png

echo "== export for PyTorch =="
./finetune export --checkpoint "$RUN" --format pth --out "$RUN/model.pth"

echo "== export for ONNX Runtime (opset 17, dynamic batch) =="
./finetune export --checkpoint "$RUN" --format onnx --dynamic-batch --out "$RUN/model.onnx"
echo "run directory: $RUN (metrics.csv, plots/curves.png, plots/confusion.png, checkpoints/)"
echo "report: $RUN/report.html (open it in a browser; rebuild with ./finetune report $RUN)"
echo "ONNX model: $RUN/model.onnx (how to run it: $RUN/model.onnx.json)"
