#!/usr/bin/env bash
# LJ Speech on a CPU, in the shared stages (recipes/stages.sh): 1 manifests (fixed splits: dev
# LJ002-0131..0160, test LJ002-0161..0200) and the LM text (every metadata row but dev and test),
# 2 a 4-gram of it, 3 training (29-minute budget on 2 cores), 4 greedy and LM decoding,
# 5 recipes/ljspeech/RESULTS.md with the curve. Works on the published LJSpeech-1.1 (.wav) too.
# Run from the project root:
#   bash recipes/ljspeech/run.sh [--src LJSpeech-1.1] [--stage N] [--stop-stage M] ...
set -euo pipefail
corpus=ljspeech
src=../shared/data/ljspeech/LJSpeech-1.1
data_dir=data/lj
exp_dir=exp/lj
config=conf/ljspeech_cpu.yaml
lm_order=4
lm_weights="1 1.5 2 3"
word_scores="-6 -4 -2 0"
results=recipes/ljspeech/RESULTS.md
title="LJ Speech (test: LJ002-0161..0200)"
source "$(dirname "$0")/../stages.sh"
stages
