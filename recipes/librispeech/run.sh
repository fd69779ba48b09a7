#!/usr/bin/env bash
# LibriSpeech end to end, in stages (Kaldi/ESPnet style); each stage is a thin call of `asr` and
# skips or resumes work already done, so the script can be run again after any failure.
#
#   0  download the subsets and the official LM (resumable, checksummed) and unpack them
#   1  manifests from the LibriSpeech tree (durations from headers; missing lines reported)
#   2  the language model: the official ARPA file if downloaded, else a 4-gram of the training
#      transcripts (asr lm build)
#   3  training: torchrun on --nproc local GPUs (normalisation statistics are computed at its start
#      and kept in the checkpoint); multi-node: recipes/slurm/train.sbatch
#   4  decoding of every dev and test set: greedy, and beam search + LM with weights tuned on the
#      first dev set
#   5  RESULTS.md: the WER table, the exact commands, model size, training time and hardware
#
# Usage (from the project root):
#   bash recipes/librispeech/run.sh [--stage N] [--stop-stage M] [--data-dir DIR] [--exp-dir DIR]
#        [--nproc N] [--config YAML] [--src LIBRISPEECH_DIR] [--train-sets "..."] [--dev-sets "..."]
#        [--test-sets "..."] [--lm FILE] [--set "section.key=value ..."] [--results FILE]
set -euo pipefail

stage=0
stop_stage=5
data_dir=data/librispeech
exp_dir=exp/librispeech
nproc=$( (nvidia-smi -L 2>/dev/null || true) | wc -l)
config=conf/librispeech_100h.yaml
src=""                       # an existing LibriSpeech folder: stage 0 is then not needed
train_sets="train-clean-100"
dev_sets="dev-clean dev-other"
test_sets="test-clean test-other"
lm=4-gram.arpa.gz            # official LM file to download ("" for none: stage 2 builds one)
overrides=""                 # passed to asr train --set
results=recipes/librispeech/RESULTS.md

while [ $# -gt 0 ]; do
  case $1 in
    --stage) stage=$2 ;; --stop-stage) stop_stage=$2 ;; --data-dir) data_dir=$2 ;; --exp-dir) exp_dir=$2 ;;
    --nproc) nproc=$2 ;; --config) config=$2 ;; --src) src=$2 ;; --train-sets) train_sets=$2 ;;
    --dev-sets) dev_sets=$2 ;; --test-sets) test_sets=$2 ;; --lm) lm=$2 ;; --set) overrides=$2 ;;
    --results) results=$2 ;;
    *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift 2
done
src=${src:-$data_dir/src/LibriSpeech}
mkdir -p "$exp_dir"
log() { echo "== $* ==" >&2; }
# Every asr command a stage runs, as run: RESULTS.md quotes them.
run() { echo "$*" >> "$exp_dir/commands.txt"; "$@"; }

if [ "$stage" -le 0 ] && [ "$stop_stage" -ge 0 ]; then
  log "stage 0: download"
  run asr download librispeech "$data_dir/src" --subsets $train_sets $dev_sets $test_sets ${lm:+--lm $lm}
fi

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  log "stage 1: manifests"
  run asr prepare librispeech "$src" "$data_dir"
  for set in $train_sets; do cat "$data_dir/$set.jsonl"; done > "$data_dir/train.jsonl"
fi

lm_file=$exp_dir/lm.arpa
if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  log "stage 2: language model"
  if [ -n "$lm" ] && [ -f "$data_dir/src/lm/$lm" ]; then
    ln -sf "$(realpath "$data_dir/src/lm/$lm")" "$lm_file"
  else
    text=$data_dir/lm_text.txt
    [ -f "$text" ] || for set in $train_sets; do python -c "import json,sys; [print(json.loads(l)['text']) for l in sys.stdin]" < "$data_dir/$set.jsonl"; done > "$text"
    run asr lm build --text "$text" --order 4 --out "$lm_file"
  fi
fi

first_dev=${dev_sets%% *}
if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  log "stage 3: training on $nproc process(es)"
  args=(-m asr train --config "$config" --train "$data_dir/train.jsonl" --dev "$data_dir/$first_dev.jsonl" --resume "$exp_dir")
  [ -z "$overrides" ] || args+=(--set $overrides)
  if [ "$nproc" -gt 1 ]; then
    run torchrun --standalone --nproc_per_node="$nproc" "${args[@]}"
  else
    run python "${args[@]}"
  fi
fi

if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ]; then
  log "stage 4: decoding"
  mkdir -p "$exp_dir/decode"
  model=$exp_dir/best.pt
  run asr tune-lm --model "$model" --manifest "$data_dir/$first_dev.jsonl" --lm "$lm_file" \
    --lm-weights 0.5 1 1.5 2 3 --word-scores -4 -2 0 2 | tee "$exp_dir/decode/tune.txt"
  weights=$(tail -n 1 "$exp_dir/decode/tune.txt" | sed -E 's/^best: (--lm-weight [^ ]+ --word-score [^:]+):.*/\1/')
  for set in $dev_sets $test_sets; do
    run asr evaluate --model "$model" --manifest "$data_dir/$set.jsonl" --report "$exp_dir/decode/greedy_$set.json" \
      > "$exp_dir/decode/greedy_$set.txt"
    run asr evaluate --model "$model" --manifest "$data_dir/$set.jsonl" --lm "$lm_file" $weights \
      --report "$exp_dir/decode/lm_$set.json" > "$exp_dir/decode/lm_$set.txt"
  done
fi

if [ "$stage" -le 5 ] && [ "$stop_stage" -ge 5 ]; then
  log "stage 5: RESULTS.md"
  python tools/results.py "$exp_dir" --sets $dev_sets $test_sets --title "LibriSpeech ($train_sets)" \
    --out "$results" --curve --peers
fi
