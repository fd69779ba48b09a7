#!/usr/bin/env bash
# Fine-tuning a model on your own speech: a starting model, a training and a dev manifest in; the
# fine-tuned model, with its starting model's LM and decoding (LM weights tuned on your dev set),
# and a RESULTS.md beside the starting model on every test set out. Proven on speechocean762
# (Mandarin-first-language children and adults reading English: ../shared/data/README.md), whose
# fixed speaker split gives the training, dev and test sets, with the five test sets of
# recipes/default to show what the model kept.
#
#   1  manifests: speechocean762 (asr prepare; --speakers N: the N lowest-numbered training
#      speakers only) and recipes/default's test sets (its stage 1)
#   2  training: asr train --config conf/finetune.yaml --init MODEL (resumes where it stopped)
#   3  decoding: LM weights tuned on dev (asr tune-lm, the starting model's LM and beam), then
#      asr export --decoding-from MODEL with them (and --lm-text, the training transcripts, with --lm-text)
#   4  every dev and test set with the fine-tuned model and with the starting model
#   5  RESULTS.md (tools/results.py), the starting model's figures beside
#
# Run from the project root:
#   bash recipes/finetune/run.sh [--init default|MODEL.pt] [--speakers N] [--name NAME] [--lm-text]
#        [--config YAML] [--set "k=v ..."] [--stage N] [--stop-stage M] [--shared DIR]
# With your own data, give --train and --dev manifests (and --test-sets NAMES of data/finetune/NAME.jsonl):
#   bash recipes/finetune/run.sh --stage 2 --train mine.jsonl --dev mine_dev.jsonl --name mine
set -euo pipefail
init=default   # the model to start from: 'default' is the packaged one
shared=../shared/data
speakers=      # N: the N lowest-numbered training speakers of speechocean762 (the bar's 30 minutes: 25)
name=          # exp/finetune/NAME (default: so_all, or so_Nspk)
config=conf/finetune.yaml
train=
dev=
lm_text=       # --lm-text: mix a 4-gram of the training transcripts into the exported LM
overrides=
stage=1
stop_stage=5
data_dir=data/finetune
dev_sets="so_dev"
test_sets="so_test an4_test libri_test cathy_test fsdd_test lj_test"
lm_weights="1 1.5 2 2.5"
word_scores="0 1 2"
while [ $# -gt 0 ]; do
  case $1 in
    --init) init=$2 ;; --shared) shared=$2 ;; --speakers) speakers=$2 ;; --name) name=$2 ;;
    --config) config=$2 ;; --train) train=$2 ;; --dev) dev=$2 ;; --set) overrides=$2 ;;
    --stage) stage=$2 ;; --stop-stage) stop_stage=$2 ;; --test-sets) test_sets=$2 ;;
    --lm-text) lm_text=1; shift; continue ;;
    *) echo "$0: unknown option $1" >&2; exit 2 ;;
  esac
  shift 2
done
name=${name:-so_${speakers:+${speakers}spk}}; name=${name%_}; [ "$name" = so ] && name=so_all
exp_dir=exp/finetune/$name
train=${train:-$data_dir/so_train${speakers:+_${speakers}spk}.jsonl}
dev=${dev:-$data_dir/so_dev.jsonl}
mkdir -p "$exp_dir/decode" "$data_dir"
log() { echo "== $* ==" >&2; }
run() { echo "$*" >> "$exp_dir/commands.txt"; "$@"; }
in_range() { [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ]; }
# The starting model's file, its LM and its beam settings (asr export --lm wrote them into it)
start_model=$(python -c "from asr.checkpoint import DEFAULT_MODEL; import sys; print(DEFAULT_MODEL if sys.argv[1] == 'default' else sys.argv[1])" "$init")
read -r start_lm decoding < <(python -c "
import sys; from asr.checkpoint import load_recognizer
d = load_recognizer(sys.argv[1]).decoding
if d is None or not d.lm: sys.exit(f'{sys.argv[1]}: no LM of its own to fine-tune the decoding of')
print(d.lm, f'--beam {d.beam_size} --beam-tokens {d.beam_size_token} --beam-threshold {d.beam_threshold:g}')" "$start_model")
hop=$(python -c "import sys; from asr.checkpoint import load_recognizer; print(load_recognizer(sys.argv[1]).config.features.hop_ms)" "$start_model")

if in_range 1; then
  log "stage 1: manifests"
  run asr prepare speechocean762 "$shared/speechocean762" "$data_dir/so"
  for s in train dev test; do cp "$data_dir/so/$s.jsonl" "$data_dir/so_$s.jsonl"; done
  if [ -n "$speakers" ]; then  # the N lowest-numbered training speakers, all their utterances
    python - "$data_dir/so/train.jsonl" "$speakers" > "$data_dir/so_train_${speakers}spk.jsonl" <<'EOF'
import json, sys
utts = [json.loads(line) for line in open(sys.argv[1], encoding="utf-8")]
chosen = set(sorted({u["speaker"] for u in utts})[:int(sys.argv[2])])
for u in utts:
    if u["speaker"] in chosen:
        print(json.dumps(u, ensure_ascii=False))
EOF
  fi
  run bash recipes/default/run.sh --stage 1 --stop-stage 1 --synth '' --shared "$shared"
  for s in an4_test libri_test cathy_test fsdd_test lj_test; do cp "data/default/$s.jsonl" "$data_dir/$s.jsonl"; done
fi
if in_range 2; then
  log "stage 2: fine-tuning $init on $train"
  run asr train --config "$config" --init "$init" --train "$train" --dev "$dev" --resume "$exp_dir" \
    ${overrides:+--set $overrides}
fi
if in_range 3; then
  log "stage 3: LM weights tuned on $dev, the model exported with them"
  run asr tune-lm --model "$exp_dir/best.pt" --manifest "$dev" --lm "$start_lm" --lm-weights $lm_weights \
    --word-scores $word_scores --hops-ms "$hop" $decoding | tee "$exp_dir/decode/tune.txt"
  weights=$(tail -n 1 "$exp_dir/decode/tune.txt" | sed -E 's/^best: --hop-ms [^ ]+ ([^:]+):.*/\1/')
  text=()
  if [ -n "$lm_text" ]; then
    python -c "import json, sys; [print(json.loads(line)['text']) for line in sys.stdin]" < "$train" > "$exp_dir/lm_text.txt"
    text=(--lm-text "$exp_dir/lm_text.txt")
  fi
  run asr export "$exp_dir/best.pt" "$exp_dir/model.pt" --decoding-from "$start_model" $weights "${text[@]}"
fi
if in_range 4; then
  log "stage 4: every set, fine-tuned and starting model"
  for set in $dev_sets $test_sets; do
    run asr evaluate --model "$exp_dir/model.pt" --manifest "$data_dir/$set.jsonl" \
      --report "$exp_dir/decode/lm_$set.json" > "$exp_dir/decode/lm_$set.txt"
    run asr evaluate --model "$exp_dir/model.pt" --manifest "$data_dir/$set.jsonl" --greedy \
      --report "$exp_dir/decode/greedy_$set.json" > "$exp_dir/decode/greedy_$set.txt"
    [ -f "$exp_dir/decode/start_$set.json" ] || run asr evaluate --model "$start_model" \
      --manifest "$data_dir/$set.jsonl" --report "$exp_dir/decode/start_$set.json" > /dev/null
  done
fi
if in_range 5; then
  log "stage 5: $exp_dir/RESULTS.md"
  python tools/results.py "$exp_dir" --sets $dev_sets $test_sets --out "$exp_dir/RESULTS.md" --curve \
    --title "Fine-tuned from $(basename "$start_model") on $(basename "$train")" \
    --column "starting model=$exp_dir/decode/start_{set}.json"
fi
