#!/usr/bin/env bash
# Interrupt and resume: start gradual unfreezing, stop it with Ctrl-C (SIGINT) after the first epoch, then continue.
# The resumed run ends with the weights an uninterrupted run would have (see InterruptResumeTest).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
RUN="runs/resume-demo-$(date +%Y%m%d-%H%M%S)"
./finetune train -c configs/gradual-unfreeze.yaml --run-dir "$RUN" --quiet &
pid=$!
until grep -q '^1,' "$RUN/metrics.csv" 2>/dev/null; do sleep 1; done
kill -INT "$pid"
wait "$pid" || echo "exit code $? (130: interrupted, resumable checkpoint written)"
./finetune train --resume "$RUN" --quiet
