#!/usr/bin/env bash
# LibriSpeech end to end: 0 download (resumable, checksummed) and unpack; then the shared stages
# (recipes/stages.sh): 1 manifests, 2 LM (the official ARPA file if downloaded, else a 4-gram of
# the training transcripts), 3 training with torchrun, 4 greedy and LM decoding, 5 RESULTS.md.
# Run from the project root:
#   bash recipes/librispeech/run.sh [--stage N] [--stop-stage M] [--nproc 8] [--config conf/librispeech_960h.yaml]
#        [--train-sets "train-clean-100 train-clean-360 train-other-500"] [--src LIBRISPEECH_DIR] ...
set -euo pipefail
corpus=librispeech
stage=0
stop_stage=5
data_dir=data/librispeech
exp_dir=exp/librispeech
nproc=$( (nvidia-smi -L 2>/dev/null || true) | wc -l)
config=conf/librispeech_100h.yaml
src=""                        # an existing LibriSpeech folder: stage 0 is then not needed
train_sets="train-clean-100"
dev_sets="dev-clean dev-other"
test_sets="test-clean test-other"
lm=4-gram.arpa.gz             # official LM file to download ("" for none: stage 2 builds one)
lm_order=4
lm_text=train_sets            # with --lm "": a 4-gram of the --train-sets' transcripts, not every train-* in --src
lm_weights="0.5 1 1.5 2 3"
word_scores="-4 -2 0 2"
results=recipes/librispeech/RESULTS.md
results_flags="--peers librispeech"
source "$(dirname "$0")/../stages.sh"
given_src=$src
src=${src:-$data_dir/src/LibriSpeech}
title="LibriSpeech ($train_sets)"
[ "$nproc" -ge 1 ] || nproc=1

if in_range 0 && [ -n "$given_src" ]; then
  log "stage 0: skipped: --src $given_src is the corpus"
elif in_range 0; then
  log "stage 0: download"
  run asr download librispeech "$data_dir/src" --subsets $train_sets $dev_sets $test_sets ${lm:+--lm $lm}
  [ -z "$lm" ] || { mkdir -p "$data_dir/lm"; ln -sf "$(realpath "$data_dir/src/lm/$lm")" "$data_dir/lm/$lm"; }
fi
stages
