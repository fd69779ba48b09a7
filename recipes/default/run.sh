#!/usr/bin/env bash
# The embedded default model (asr/models/default.pt): every training split of the shared real
# speech (../shared/data: AN4, LJ Speech, Cathy, the Asterisk prompts, librispeech-silver, FSDD;
# 3.9 h, several hundred speakers) and 2.1 h of synthetic voices reading training sentences
# (tools/synthesize.py: flite, espeak-ng, Piper), in the shared stages (recipes/stages.sh) with a
# stage 1 of its own that prepares each corpus with its fixed split and mixes them, and a stage 6 that exports the
# best checkpoint (fp16) with the LM and its tuned weights into the package.
# Dev (the best epoch) is speakers training never hears: AN4's dev speakers and FSDD's theo. The LM
# weights are tuned on that plus Cathy's and LJ Speech's dev sentences (voices in training, sentences
# not), so that read English, not only letters and digits, sets them. Tests: AN4 test (10 unseen
# speakers), the LibriSpeech samples (4 unseen speakers), Cathy's test prompts (her other prompts
# are in training), FSDD yweweler (unseen), LJ test.
# Run from the project root:
#   bash recipes/default/run.sh [--stage N] [--stop-stage M] [--shared DIR] [--synth DIR|'' [--synth-sentences N]] [--prune T]
#                               [--units phones|letters] [--force-export] ...
set -euo pipefail
shared=../shared/data
synth=data/synth_voices  # synthetic speech trained on too (ablation.md: it pays at this budget); stage 1
                         # makes it if missing; --synth '' trains on the real speech alone
synth_sentences=1500  # how many training sentences it speaks when it makes it
general_weight=0.5  # the general-English LM's share of the mixture (the rest: the training text's)
prune=1e-8     # relative-entropy pruning of the mixture: 112 MB of ARPA -> 65 MB, 30 MB gzipped in the package; 1e-7
               # (20 MB) decodes the tuning set 0.7 points worse (recipes/default/ablation.md, "A larger LM")
units=phones   # the model hears CMUdict's 39 phones, and words are spelt through a pronunciation
               # lexicon (tools/lexicon.py, made in stage 2); letters: it spells words as written
               # (ablation.md: phones took 3.5 points off the tuning set, and more off read English)
force_export=  # stages 5-6 replace the packaged model and RESULTS.md only with one at least as good on dev
               # (else RESULTS.md goes to the exp dir), unless --force-export
args=()
while [ $# -gt 0 ]; do
  case $1 in
    --shared) shared=$2; shift 2 ;; --synth) synth=$2; shift 2 ;; --synth-sentences) synth_sentences=$2; shift 2 ;; --general-weight) general_weight=$2; shift 2 ;; --prune) prune=$2; shift 2 ;; --units) units=$2; shift 2 ;; --force-export) force_export=1; shift ;;
    *) args+=("$1"); shift ;;
  esac
done
data_dir=data/default
exp_dir=exp/default
config=conf/default_model.yaml
dev_sets="dev an4_dev fsdd_dev cathy_dev lj_dev"
tune_set=dev_tune
test_sets="an4_test libri_test cathy_test fsdd_test lj_test"
lm_order=4
# Stage 4 tunes these with every step in hops_ms (27 searches of the tuning set, ~6 min): every run so far
# found its best at 1.5-2 and -1-0, with 1, 3 and -3 at least 0.5 points worse (ablation.md, "A third seed")
lm_weights="1.5 2 2.5"
word_scores="-1 0 1"
# The beam search, in stage 4 and in the export: 1000 wide, but extending hypotheses by each frame's 8
# likeliest units only and pruning those 12 below the best, it searches as fast as a plain beam of 200
# and takes 0.7 points more off the tuning set (ablation.md, "Beam pruning")
decoding="--beam 1000 --beam-tokens 8 --beam-threshold 12"
# The front-end's frame step at decoding, chosen in stage 4 with the LM weights: shorter than
# training's 10 ms, it reads speech as slower than it is, and fast talkers' phones get more of the
# model's 30 ms output frames (ablation.md, "A shorter frame step")
hops_ms="10 9.5 9"
stop_stage=6
results=recipes/default/RESULTS.md
title="Default model (tests: AN4, LibriSpeech samples, Cathy, FSDD yweweler, LJ Speech)"
source "$(dirname "$0")/../stages.sh" "${args[@]}"
case $units in
  letters) ;;
  phones) overrides="train.lexicon=$exp_dir/lexicon.txt${overrides:+ $overrides}" ;;  # stage 3's --set
  *) echo "$0: --units is letters or phones, not $units" >&2; exit 2 ;;
esac
results_flags="--notes recipes/default/ablation.md --column PocketSphinx=$exp_dir/pocketsphinx_{set}.json
  --column previous-default=$exp_dir/previous_{set}.json"  # the peers: stage 4 below runs them

if in_range 1; then
  log "stage 1: manifests of every corpus, mixed"
  run asr prepare an4 "$shared/an4" "$data_dir/an4"
  run asr prepare ljspeech "$shared/ljspeech/LJSpeech-1.1" "$data_dir/lj"
  run asr prepare fsdd "$shared/fsdd" "$data_dir/fsdd"
  # Cathy's fixed split is by prompt: every take of arctic_b0440..0539 in test, b0340..0439 in dev.
  run asr prepare folder "$shared/cathy" "$data_dir/cathy" --group 'arctic_[ab][0-9]{4}' \
    --test 'arctic_b04[4-9]?' 'arctic_b05[0-3]?' --dev 'arctic_b03[4-9]?' 'arctic_b04[0-3]?'
  # The Asterisk prompts (two are beeps, left out as non-speech) and librispeech-silver: training only.
  run asr prepare folder "$shared/asterisk" "$data_dir/asterisk"
  run asr prepare folder "$shared/librispeech-silver" "$data_dir/silver"
  run asr prepare librispeech "$shared/librispeech/LibriSpeech" "$data_dir/libri"
  corpora="an4 lj fsdd cathy asterisk silver"
  # The LM's text, written before the synthetic set joins: it only repeats sentences of these.
  for c in $corpora; do cat "$data_dir/$c/lm_text.txt"; done > "$data_dir/lm_text.txt"
  if [ -n "$synth" ]; then
    if [ ! -d "$synth" ]; then
      # The ablation's set (recipes/default/ablation.md): 1,500 training sentences of 3+ words, none
      # a dev or test transcript, in 10 voice slots; about 5 minutes here. Made beside DIR and then
      # moved into place, so that a run cut off half way is not taken for a finished set next time.
      rm -rf "$synth.part"
      run python tools/synthesize.py --text "$data_dir/lm_text.txt" \
        --out "$synth.part" --sentences "$synth_sentences" \
        --min-words 3 --exclude "$data_dir"/{an4,fsdd,cathy,lj}/{dev,test}.jsonl "$data_dir"/libri/{dev-clean-2,test-clean}.jsonl \
        --voices flite:awb flite:rms flite:slt flite:kal16 espeak:en-us espeak:en-us+f3 espeak:en-gb-scotland \
        espeak:en-us+m3 piper:joe piper:joe
      mv "$synth.part" "$synth"
    fi
    run asr prepare folder "$synth" "$data_dir/synth"
    corpora="$corpora synth"
  fi
  for c in $corpora; do cat "$data_dir/$c/train.jsonl"; done > "$data_dir/train_all.jsonl"
  cat "$data_dir"/{an4,fsdd}/dev.jsonl > "$data_dir/dev.jsonl"  # unseen speakers only
  cat "$data_dir"/{an4,fsdd,cathy,lj}/dev.jsonl > "$data_dir/dev_tune.jsonl"
  for c in an4 fsdd cathy lj; do
    cp "$data_dir/$c/dev.jsonl" "$data_dir/${c}_dev.jsonl"
    cp "$data_dir/$c/test.jsonl" "$data_dir/${c}_test.jsonl"
  done
  cat "$data_dir"/libri/{dev-clean-2,test-clean}.jsonl > "$data_dir/libri_test.jsonl"
fi
if in_range 2; then
  # A general-English trigram (PocketSphinx's, 72k words) mixed with a 4-gram of the training
  # text, so that ordinary English is in the vocabulary and the corpora's own phrasing still counts.
  log "stage 2: language model: general English + the training text"
  python -c "import pocketsphinx" 2>/dev/null || { echo "$0: stage 2 needs pocketsphinx: pip install pocketsphinx" >&2; exit 1; }
  [ -f "$exp_dir/en-us.arpa.gz" ] || run python tools/pocketsphinx_lm.py --out "$exp_dir/en-us.arpa.gz"
  run asr lm build --text "$data_dir/lm_text.txt" --order "$lm_order" --out "$exp_dir/domain.arpa"
  run asr lm mix "$exp_dir/en-us.arpa.gz" "$exp_dir/domain.arpa" \
    --weights "$general_weight" "$(python -c "print(1 - $general_weight)")" --out "$exp_dir/lm_mix.arpa"
  run asr lm prune "$exp_dir/lm_mix.arpa" --threshold "$prune" --out "$exp_dir/lm.arpa"  # what stages 4 and 6 use
  if [ "$units" = phones ]; then
    # Pronunciations of the LM's words and the training transcripts' (CMUdict; flite's t2p for the
    # rest): the model trains and decodes with it, and carries it in its file
    command -v t2p > /dev/null || { echo "$0: --units phones needs flite's t2p: apt-get install flite" >&2; exit 1; }
    run python tools/lexicon.py --lm "$exp_dir/lm.arpa" --manifests "$data_dir/train_all.jsonl" --out "$exp_dir/lexicon.txt"
  fi
  for set in $dev_sets $test_sets; do
    python -c "import json, sys; [print(json.loads(line)['text']) for line in sys.stdin]" \
      < "$data_dir/$set.jsonl" > "$exp_dir/text_$set.txt"
  done
  run asr lm perplexity "$exp_dir/lm.arpa" --text $(for set in $dev_sets $test_sets; do echo "$exp_dir/text_$set.txt"; done) \
    | tee "$exp_dir/lm_perplexity.txt"
fi
if in_range 4; then
  # Beside ours in RESULTS.md: PocketSphinx's generic en-us model, and the packaged default model
  # this run replaces (before stage 6 overwrites it), on every test set; each kept once made.
  log "stage 4: the peers on the test sets"
  for set in $test_sets; do
    if [ ! -f "$exp_dir/pocketsphinx_$set.json" ]; then
      command -v pocketsphinx_continuous > /dev/null \
        || { echo "$0: the PocketSphinx column needs: apt-get install pocketsphinx pocketsphinx-en-us" >&2; exit 1; }
      run python tools/peer_pocketsphinx.py --manifest "$data_dir/$set.jsonl" --report "$exp_dir/pocketsphinx_$set.json"
    fi
    [ -f "$exp_dir/previous_$set.json" ] || run asr evaluate --manifest "$data_dir/$set.jsonl" \
      --report "$exp_dir/previous_$set.json" > "$exp_dir/previous_$set.txt"
  done
fi
first=$stage last=$stop_stage
[ "$stage" -ge 3 ] || stage=3
[ "$stop_stage" -le 4 ] || stop_stage=4
stages  # 3 and 4; 5 below, once it is known whether this run replaces the package
stop_stage=$last
better=1
if in_range 5 || in_range 6; then
  # Dev WER (unseen speakers) as users get it, with the LM: this run's best epoch at its tuned
  # weights against the packaged model's own decoding. A run its time budget cut short on a slow
  # machine must not replace a better model unnoticed, nor the package's figures in RESULTS.md.
  # (Not greedy: a phone model has no greedy words, and one without an LM cannot tell homophones.)
  run asr evaluate --manifest "$data_dir/dev.jsonl" --report "$exp_dir/decode/packaged_lm_dev.json" \
    > "$exp_dir/decode/packaged_lm_dev.txt"
  verdict=$(python - "$exp_dir/decode/lm_dev.json" "$exp_dir/decode/packaged_lm_dev.json" <<'PY'
import json, sys
new, old = (json.load(open(f))["wer"] for f in sys.argv[1:])
print(f"dev WER (with the LM) {new:.2f}% against the packaged model's {old:.2f}%" + ("" if new <= old else " (worse)"))
PY
)
  echo "$verdict" >&2
  if [[ $verdict == *"(worse)" && -z $force_export ]]; then
    better=
    results=$exp_dir/RESULTS.md  # recipes/default/RESULTS.md keeps describing the packaged model
  fi
fi
stage=$(( first > 5 ? first : 5 ))
stages  # 5
stage=$first
if in_range 6; then
  log "stage 6: export into the package"
  if [ -z "$better" ]; then
    echo "$0: not exported: this run's model is worse on dev than the one in the package (its results: $results);" \
      "--stage 5 --force-export exports it anyway" >&2
    exit 1
  fi
  weights=$(tail -n 1 "$exp_dir/decode/tune.txt" | sed -E 's/^best: ([^:]+):.*/\1/')  # with --hop-ms, its frame step
  gzip -9 -c "$exp_dir/lm.arpa" > "$exp_dir/lm.arpa.gz"
  run asr export "$exp_dir/best.pt" asr/models/default.pt --lm "$exp_dir/lm.arpa.gz" $weights $decoding
fi
