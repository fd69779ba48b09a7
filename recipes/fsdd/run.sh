#!/usr/bin/env bash
# Free Spoken Digits on a CPU, in the shared stages (recipes/stages.sh): 1 manifests (fixed speaker
# splits; test speaker yweweler never heard in training), 2 a bigram of the training transcripts
# (its lexicon: the ten digit words), 3 training (~5 min on 2 cores), 4 greedy and LM decoding,
# 5 recipes/fsdd/RESULTS.md with the curve. Run from the project root:
#   bash recipes/fsdd/run.sh [--src FOLDER_HOLDING_recordings/] [--stage N] [--stop-stage M] ...
set -euo pipefail
corpus=fsdd
src=../shared/data/fsdd
data_dir=data/fsdd
exp_dir=exp/fsdd
config=conf/fsdd_cpu.yaml
lm_order=2
lm_weights="0 1 2 4"
word_scores="4 8 16"
results=recipes/fsdd/RESULTS.md
title="Free Spoken Digits (test: unseen speaker yweweler)"
source "$(dirname "$0")/../stages.sh"
stages
