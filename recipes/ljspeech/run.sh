#!/usr/bin/env bash
# LJ Speech on a CPU: prepare -> train (under 30 min on 2 cores) -> evaluate on the test split.
# Run from the project root:  bash recipes/ljspeech/run.sh [LJSpeech-1.1 folder]
set -euo pipefail
src=${1:-../shared/data/ljspeech/LJSpeech-1.1}
data=${DATA:-data/lj}
exp=${EXP:-exp/lj}
asr prepare ljspeech "$src" "$data"
asr train --config conf/ljspeech_cpu.yaml --train "$data/train.jsonl" --dev "$data/dev.jsonl" --out "$exp"
asr evaluate --model "$exp/best.pt" --manifest "$data/test.jsonl" --report "$exp/test_report.json"
