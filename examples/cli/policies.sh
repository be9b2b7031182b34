#!/usr/bin/env bash
# What each shipped freeze policy trains, without training: the totals and the backward frontier of every policy in
# configs/policies, on the quickstart model at 224x224.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
for policy in configs/policies/*.yaml; do
  name=$(basename "$policy" .yaml)
  echo "== $name"
  ./finetune inspect -c configs/quickstart.yaml --set "freeze=policies/$name.yaml" \
    --set data.image_size=224 --set data.resize=256 | grep -E '^(policy|trainable|frozen param|BatchNorm|backward)'
done
