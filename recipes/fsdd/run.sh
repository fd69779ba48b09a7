#!/usr/bin/env bash
# Free Spoken Digits on a CPU, in the shared stages (recipes/stages.sh): 1 manifests (fixed speaker
# splits; test speaker yweweler never heard in training), 2 a bigram of the training transcripts
# (its lexicon: the ten digit words), 3 training (~5 min on 2 cores), 4 greedy and LM decoding,
# 5 recipes/fsdd/RESULTS.md with the curve. Run from the project root:
#   bash recipes/fsdd/run.sh [--src FOLDER_HOLDING_recordings/] [--stage N] [--stop-stage M] ...
set -euo pipefail
corpus=fsdd
stage=1
stop_stage=5
src=../shared/data/fsdd
data_dir=data/fsdd
exp_dir=exp/fsdd
nproc=1
config=conf/fsdd_cpu.yaml
train_sets=train
dev_sets=dev
test_sets=test
lm=""
lm_order=2
lm_weights="0 1 2 4"
word_scores="4 8 16"
overrides=""
results=recipes/fsdd/RESULTS.md
results_flags=""
title="Free Spoken Digits (test: unseen speaker yweweler)"
source "$(dirname "$0")/../stages.sh"
stages
