#!/usr/bin/env bash
# Free Spoken Digits on a CPU: prepare -> train -> evaluate on the unseen speaker yweweler.
# Run from the project root:  bash recipes/fsdd/run.sh [folder holding recordings/]
set -euo pipefail
src=${1:-../shared/data/fsdd}
data=${DATA:-data/fsdd}
exp=${EXP:-exp/fsdd}
asr prepare fsdd "$src" "$data"
asr train --config conf/fsdd_cpu.yaml --train "$data/train.jsonl" --dev "$data/dev.jsonl" --out "$exp"
asr evaluate --model "$exp/best.pt" --manifest "$data/test.jsonl" --report "$exp/test_report.json"
