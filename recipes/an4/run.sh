#!/usr/bin/env bash
# AN4 (CMU census database) on a CPU, in the shared stages (recipes/stages.sh), with ESPnet's split
# so that the figures sit beside its published ones: 0 download (an4_sphere.tar.gz, resumable,
# checked as a whole gzip stream), 1 manifests (dev = the first 100 train utterances, test = the
# 130 an4_test utterances of 10 unseen speakers) and the LM text (train transcripts only), 2 a
# 4-gram of it, 3 training (29-minute budget on 2 cores), 4 greedy and LM decoding (weights tuned
# on dev), 5 recipes/an4/RESULTS.md with the curve. Reads either published form (.sph or .raw).
# Run from the project root:
#   bash recipes/an4/run.sh [--src FOLDER_HOLDING_etc_AND_wav] [--stage N] [--stop-stage M] ...
set -euo pipefail
corpus=an4
stage=0
data_dir=data/an4
exp_dir=exp/an4
src=""                        # an AN4 folder (etc/, wav/); default ../shared/data/an4 where it exists, else stage 0 fetches it
config=conf/an4_cpu.yaml
lm_order=4
lm_weights="0.5 1 1.5 2 3"
word_scores="-2 0 2 4"
results=recipes/an4/RESULTS.md
results_flags="--peers an4 --notes recipes/an4/ablation.md"  # the ablation: its commands and outputs
title="AN4 (test: an4_test, 130 utterances, 10 unseen speakers)"
source "$(dirname "$0")/../stages.sh"
if [ -z "$src" ]; then
  if [ -d ../shared/data/an4/etc ]; then src=../shared/data/an4; else src=$data_dir/src/an4; fi
fi
if in_range 0 && [ ! -d "$src/etc" ]; then
  log "stage 0: download"
  run asr download an4 "$data_dir/src"
fi
stages
