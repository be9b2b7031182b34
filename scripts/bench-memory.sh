#!/usr/bin/env bash
# Peak memory (RSS, from /proc VmHWM) of evaluate and predict against train, each its own process, at 224x224:
# a benchmark, not a test. Usage: scripts/bench-memory.sh [POLICY]   (default: full; try linear-probe)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
POLICY="${1:-full}"
OUT="$(mktemp -d)"
SETS=(--set "freeze=policies/$POLICY.yaml" --set data.image_size=224 --set data.resize=256 --set data.augment=true
      --set train.epochs=1 --set train.batch_size=32 --set train.max_steps_per_epoch=8 --set train.feature_cache=false)
./finetune train -c configs/quickstart.yaml --run-dir "$OUT/run" --quiet "${SETS[@]}" > "$OUT/train.log"
peak() { grep -o '"peak_rss_bytes" *: *[0-9]*' "$1" | grep -o '[0-9]*$'; }
train=$(peak "$OUT/run/summary.json")
./finetune evaluate --checkpoint "$OUT/run" --data data/fashion-mnist-b --batch-size 32 --json > "$OUT/eval.json"
eval=$(peak "$OUT/eval.json")
./finetune predict --checkpoint "$OUT/run" --json data/fashion-mnist-b/val/bag/*.png > "$OUT/pred.json"
pred=$(peak "$OUT/pred.json")
printf "policy %s, 224x224, batch 32 (predict: one image at a time)\n" "$POLICY"
printf "%-10s %10s %10s\n" command "peak MiB" "vs train"
for row in "train $train" "evaluate $eval" "predict $pred"; do
  echo "$row $train" | awk '{printf "%-10s %10.0f %10.2f\n", $1, $2 / 1048576, $2 / $3}'
done
rm -rf "$OUT"
