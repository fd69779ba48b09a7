# Stages shared by recipes/*/run.sh (sourced, not run). The corpus's run.sh sets its defaults,
# sources this file with "$@" (options override the defaults), runs its own stage 0 if it has one,
# then calls `stages`. Each stage is a thin call of `asr`; training (stage 3) resumes from its checkpoint, the others run again.
#
#   1  manifests (asr prepare; the corpus's LM text beside them)
#   2  the language model: $data_dir/lm_file if a download put one there, else asr lm build (on the
#      preparer's lm_text.txt, or with lm_text=train_sets on the --train-sets' transcripts)
#   3  training: torchrun on --nproc GPUs, or one process (`--resume DIR`: a re-run continues)
#   4  greedy and beam + LM decoding of every dev and test set, LM weights tuned on $tune_set
#      (default: the first dev set, the one that also picks the best epoch); with hops_ms="10 9.5 ...",
#      the front-end's frame step with them, every step at every pair of weights
#   5  RESULTS.md (tools/results.py): table, exact commands, model size, time, hardware, curve
#
# Options: --stage N --stop-stage M --src DIR --data-dir DIR --exp-dir DIR --nproc N --config YAML
#          --train-sets "..." --dev-sets "..." --test-sets "..." --tune-set NAME --lm FILE --set "k=v ..." --results FILE
#
# Defaults a corpus need not set (its run.sh sets the rest: corpus, src, data_dir, exp_dir,
# config, lm_order, lm_weights, word_scores, results, title; decoding, beam search options for stage 4
# such as "--beam 200", if not asr's defaults; hops_ms, frame steps for stage 4 to choose from):
: "${stage:=1}" "${stop_stage:=5}" "${nproc:=1}" "${train_sets:=train}" "${dev_sets:=dev}" "${test_sets:=test}"
: "${lm:=}" "${overrides:=}" "${results_flags:=}" "${decoding:=}" "${hops_ms:=}"
while [ $# -gt 0 ]; do
  case $1 in
    --stage) stage=$2 ;; --stop-stage) stop_stage=$2 ;; --data-dir) data_dir=$2 ;; --exp-dir) exp_dir=$2 ;;
    --nproc) nproc=$2 ;; --config) config=$2 ;; --src) src=$2 ;; --train-sets) train_sets=$2 ;;
    --dev-sets) dev_sets=$2 ;; --test-sets) test_sets=$2 ;; --lm) lm=$2 ;; --set) overrides=$2 ;;
    --results) results=$2 ;; --tune-set) tune_set=$2 ;;
    *) echo "$0: unknown option $1" >&2; exit 2 ;;
  esac
  shift 2
done
mkdir -p "$exp_dir"
log() { echo "== $* ==" >&2; }
# Every command a stage runs, as run: RESULTS.md quotes them.
run() { echo "$*" >> "$exp_dir/commands.txt"; "$@"; }
in_range() { [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ]; }

stages() {
  local first_dev=${dev_sets%% *} lm_file=$exp_dir/lm.arpa model=$exp_dir/best.pt
  if in_range 1; then
    log "stage 1: manifests"
    run asr prepare "$corpus" "$src" "$data_dir"
    for set in $train_sets; do cat "$data_dir/$set.jsonl"; done > "$data_dir/train_all.jsonl"
  fi
  if in_range 2; then
    log "stage 2: language model"
    if [ -n "${lm:-}" ] && [ -f "$data_dir/lm/$lm" ]; then
      ln -sf "$(realpath "$data_dir/lm/$lm")" "$lm_file"
    else
      # The preparer's LM text (e.g. LJ Speech's text beyond its audio), unless the recipe asks for
      # its --train-sets' transcripts only (lm_text=train_sets) or the preparer wrote none.
      local text=$data_dir/lm_text.txt
      if [ "${lm_text:-}" = train_sets ] || [ ! -f "$text" ]; then
        text=$data_dir/lm_text_train_sets.txt
        for set in $train_sets; do
          python -c "import json, sys; [print(json.loads(line)['text']) for line in sys.stdin]" < "$data_dir/$set.jsonl"
        done > "$text"
      fi
      run asr lm build --text "$text" --order "$lm_order" --out "$lm_file"
    fi
  fi
  if in_range 3; then
    log "stage 3: training on $nproc process(es)"
    local args=(-m asr train --config "$config" --train "$data_dir/train_all.jsonl" --dev "$data_dir/$first_dev.jsonl"
                --resume "$exp_dir")
    [ -z "${overrides:-}" ] || args+=(--set $overrides)
    if [ "$nproc" -gt 1 ]; then
      run torchrun --standalone --nproc_per_node="$nproc" "${args[@]}"
    else
      run python "${args[@]}"
    fi
  fi
  if in_range 4; then
    log "stage 4: decoding"
    mkdir -p "$exp_dir/decode"
    local tune_manifest=$data_dir/${tune_set:-$first_dev}.jsonl weights hop
    # Weights and step together, not one after the other: the best step moves the best weights
    # (recipes/default/ablation.md, "A third seed")
    run asr tune-lm --model "$model" --manifest "$tune_manifest" --lm "$lm_file" --lm-weights $lm_weights \
      --word-scores $word_scores ${hops_ms:+--hops-ms $hops_ms} $decoding | tee "$exp_dir/decode/tune.txt"
    weights=$(tail -n 1 "$exp_dir/decode/tune.txt" | sed -E 's/^best: ([^:]+):.*/\1/')  # with --hop-ms, if tuned
    hop=$(tail -n 1 "$exp_dir/decode/tune.txt" | grep -oE -- '--hop-ms [^ ]+' || true)  # for the greedy decodes
    for set in $dev_sets $test_sets; do
      run asr evaluate --model "$model" --manifest "$data_dir/$set.jsonl" $hop \
        --report "$exp_dir/decode/greedy_$set.json" > "$exp_dir/decode/greedy_$set.txt"
      run asr evaluate --model "$model" --manifest "$data_dir/$set.jsonl" --lm "$lm_file" $weights $decoding \
        --report "$exp_dir/decode/lm_$set.json" > "$exp_dir/decode/lm_$set.txt"
    done
  fi
  if in_range 5; then
    log "stage 5: $results"
    python tools/results.py "$exp_dir" --sets $dev_sets $test_sets --title "$title" --out "$results" --curve $results_flags
  fi
}
