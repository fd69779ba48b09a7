#!/usr/bin/env bash
# The embedded default model (asr/models/default.pt): LJ Speech train + FSDD training speakers,
# in the shared stages (recipes/stages.sh) with a stage 1 of its own that prepares both corpora
# and mixes them, and a stage 6 that exports the best checkpoint (fp16) with the LM and its tuned
# weights into the package. Tested on both held-out sets: LJ003 (an unseen recording of the
# reader) and FSDD's yweweler (an unseen speaker).
# Run from the project root:
#   bash recipes/default/run.sh [--stage N] [--stop-stage M] [--lj DIR] [--fsdd DIR] ...
set -euo pipefail
lj=../shared/data/ljspeech/LJSpeech-1.1
fsdd=../shared/data/fsdd/recordings
args=()
while [ $# -gt 0 ]; do
  case $1 in --lj) lj=$2; shift 2 ;; --fsdd) fsdd=$2; shift 2 ;; *) args+=("$1"); shift ;; esac
done
data_dir=data/default
exp_dir=exp/default
config=conf/default_model.yaml
dev_sets="dev lj_dev fsdd_dev"
test_sets="lj_test fsdd_test"
lm_order=4
lm_weights="0.5 1 1.5 2"
word_scores="-4 -2 0 2"
stop_stage=6
results=recipes/default/RESULTS.md
title="Default model (LJ Speech + FSDD; tests: LJ003-0001..0098, FSDD speaker yweweler)"
source "$(dirname "$0")/../stages.sh" "${args[@]}"

if in_range 1; then
  log "stage 1: manifests of both corpora, mixed"
  run asr prepare ljspeech "$lj" "$data_dir/lj"
  run asr prepare fsdd "$fsdd" "$data_dir/fsdd"
  cat "$data_dir"/{lj,fsdd}/train.jsonl > "$data_dir/train_all.jsonl"
  cat "$data_dir"/{lj,fsdd}/dev.jsonl > "$data_dir/dev.jsonl"
  for c in lj fsdd; do
    cp "$data_dir/$c/dev.jsonl" "$data_dir/${c}_dev.jsonl"
    cp "$data_dir/$c/test.jsonl" "$data_dir/${c}_test.jsonl"
  done
  cat "$data_dir"/{lj,fsdd}/lm_text.txt > "$data_dir/lm_text.txt"
fi
first=$stage
[ "$stage" -ge 2 ] || stage=2
stages
stage=$first
if in_range 6; then
  log "stage 6: export into the package"
  weights=$(tail -n 1 "$exp_dir/decode/tune.txt" | sed -E 's/^best: (--lm-weight [^ ]+ --word-score [^:]+):.*/\1/')
  gzip -9 -c "$exp_dir/lm.arpa" > "$exp_dir/lm.arpa.gz"
  run asr export "$exp_dir/best.pt" asr/models/default.pt --lm "$exp_dir/lm.arpa.gz" $weights
fi
