"""The `asr` command: argument parsing only; each subcommand calls one library function.

Exit codes: 0 success, 1 when anything failed (a bad file, a bad manifest), 2 for usage errors;
`asr train` stopped by a signal (after saving its checkpoint) exits 128 + the signal's number,
as a shell reports a process that signal killed (143 for SIGTERM).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import signal
import sys
import tempfile
from pathlib import Path

# Errors a user can cause; each carries a one-line message naming the file and the problem.
from asr.audio import AudioError
from asr.checkpoint import CheckpointError
from asr.config import ConfigError
from asr.data import ManifestError
from asr.decode import DecodeError
from asr.lm import LMError
from asr.prepare import PrepareError
from asr.prepare.download import DownloadError
from asr.train import TrainError

DEVICES = ["auto", "cpu", "cuda"]
LM_TEXT_WEIGHT = 0.2  # asr export --lm-text: the domain's share (recipes/finetune/RESULTS.md)


class UsageError(Exception):
    """Options that do not go together: exit code 2, as for argparse's own usage errors."""


USER_ERRORS = (AudioError, CheckpointError, ConfigError, DecodeError, DownloadError, LMError, ManifestError,
               PrepareError, TrainError)


def main(argv: list[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):  # a file name that is not UTF-8 prints as its bytes
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="surrogateescape")
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        return args.run(args)
    except UsageError as e:
        print(f"asr: error: {e}", file=sys.stderr)
        return 2
    except USER_ERRORS as e:
        print(f"asr: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:  # an unwritable --out, a full disk: one line, not a traceback
        print(f"asr: error: {e.filename or ''}: {e.strerror or e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("asr: interrupted", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="asr", description="BiLSTM-CTC speech recognition.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("prepare", help="write JSON-lines manifests for a corpus")
    p.add_argument("corpus", choices=["ljspeech", "fsdd", "librispeech", "an4", "speechocean762", "folder", "kaldi"],
                   help="a corpus by name; 'folder': audio files with NAME.txt transcripts beside them; "
                        "'kaldi': a Kaldi/ESPnet data directory (wav.scp, text, [segments], [utt2spk])")
    p.add_argument("src", help="the corpus folder as it ships")
    p.add_argument("out", help="folder for the manifests")
    g = p.add_argument_group("splitting a folder (every take of one prompt stays on one side)")
    g.add_argument("--test", nargs="+", default=[], metavar="GLOB", help="names (or groups) for the test set")
    g.add_argument("--dev", nargs="+", default=[], metavar="GLOB", help="names (or groups) for the dev set")
    g.add_argument("--test-from", metavar="FILE", help="test patterns (or names), one a line")
    g.add_argument("--dev-from", metavar="FILE", help="dev patterns (or names), one a line")
    g.add_argument("--test-fraction", type=float, default=0.0, help="of the other groups, by a stable hash")
    g.add_argument("--dev-fraction", type=float, default=0.0, help="of the other groups, by a stable hash")
    g.add_argument("--group", metavar="REGEX",
                   help="the group is this expression's match in the name (default: the transcript's text)")
    p.add_argument("--run-pipes", action="store_true",
                   help="kaldi: run wav.scp's commands ('sox ... |'); without it they are reported, never run")
    p.set_defaults(run=_prepare)

    p = sub.add_parser("to-kaldi", help="write a manifest out as a Kaldi/ESPnet data directory")
    p.add_argument("manifest")
    p.add_argument("out", help="the data directory: wav.scp, text, utt2spk, spk2utt[, segments]")
    p.set_defaults(run=_to_kaldi)

    p = sub.add_parser("download", help="fetch a public corpus (resumable, checksummed) and unpack it")
    p.add_argument("corpus", choices=["librispeech", "an4"])
    p.add_argument("out", help="folder: OUT/LibriSpeech/<subset>, OUT/lm/<file> or OUT/an4/; OUT/archives/")
    p.add_argument("--subsets", nargs="+", default=[], help="e.g. train-clean-100 dev-clean test-clean")
    p.add_argument("--lm", nargs="+", default=[], help="official LM files, e.g. 4-gram.arpa.gz librispeech-lexicon.txt")
    p.set_defaults(run=_download)

    p = sub.add_parser("train", help="train a model (under torchrun: on every process it starts)",
                       epilog="A preempted job can run the same command again: with --config and --resume DIR, "
                              "it starts afresh when DIR holds no last.pt and continues exactly when it does.")
    p.add_argument("--config", help="conf/*.yaml (with --resume: by default the run's own)")
    p.add_argument("--train", help="training manifest (overrides train.train_manifest)")
    p.add_argument("--dev", help="dev manifest (overrides train.dev_manifest)")
    p.add_argument("--out", help="folder for last.pt, best.pt, epoch-N.pt and log.jsonl")
    p.add_argument("--resume", metavar="DIR", help="continue the run in DIR from DIR/last.pt")
    p.add_argument("--init", metavar="MODEL", help="fine-tune: start from this model file or checkpoint ('default': "
                   "the packaged model), its weights, units, lexicon and statistics (sets train.init)")
    p.add_argument("--max-steps", type=int, help="stop after this many optimizer steps")
    p.add_argument("--checkpoint-every", type=int, metavar="N", help="also write last.pt every N steps")
    p.add_argument("--skip-bad", action="store_true",
                   help="leave out bad manifest lines and unreadable audio files (each reported) instead of stopping")
    p.add_argument("--set", nargs="+", action="extend", default=[], metavar="SECTION.KEY=VALUE",
                   help="override config values (repeatable)")
    p.set_defaults(run=_train)

    p = sub.add_parser("average", help="average the weights of checkpoints of one model")
    p.add_argument("checkpoints", nargs="+", help="e.g. exp/lj/epoch-*.pt")
    p.add_argument("--out", required=True, help="the averaged checkpoint")
    p.set_defaults(run=_average)

    p = sub.add_parser("lm", help="n-gram language models")
    lm = p.add_subparsers(dest="lm_command", required=True)
    p = lm.add_parser("build", help="estimate an interpolated modified Kneser-Ney model; write ARPA")
    p.add_argument("--text", nargs="+", required=True, help="text files, one sentence a line (.gz too)")
    p.add_argument("--order", type=int, default=4, help="n-gram order (the decoder's KenLM loads 2 to 6)")
    p.add_argument("--out", required=True, help="LM.arpa (LM.arpa.gz: gzipped)")
    p.add_argument("--units", choices=["words", "chars"], default="words",
                   help="chars: letters and '|', for lexicon-free decoding")
    p.add_argument("--prune", type=int, nargs="+", default=[], metavar="N",
                   help="per order from 1: drop n-grams seen at most N times (unigrams are always kept)")
    p.add_argument("--lexicon", help="also write the words' spellings here (lexicon-constrained decoding)")
    p.set_defaults(run=_lm_build)
    p = lm.add_parser("mix", help="interpolate ARPA models into one (a general one with a domain's, say)")
    p.add_argument("models", nargs="+", help="ARPA files (.gz too)")
    p.add_argument("--weights", type=float, nargs="+", required=True, help="one per model (normalised to sum to 1)")
    p.add_argument("--out", required=True, help="LM.arpa (LM.arpa.gz: gzipped)")
    p.add_argument("--lexicon", help="also write the words' spellings here (lexicon-constrained decoding)")
    p.set_defaults(run=_lm_mix)
    p = lm.add_parser("prune", help="relative-entropy pruning (SRILM's -prune): a smaller model, nearly as good")
    p.add_argument("model", help="ARPA file (.gz too)")
    p.add_argument("--threshold", type=float, required=True, help="e.g. 1e-8; larger prunes more")
    p.add_argument("--out", required=True, help="LM.arpa (LM.arpa.gz: gzipped)")
    p.set_defaults(run=_lm_prune)
    p = lm.add_parser("perplexity", help="out-of-vocabulary rate and perplexity of a model on text")
    p.add_argument("model", help="ARPA file (.gz too)")
    p.add_argument("--text", nargs="+", required=True, help="text files, one sentence a line (.gz too)")
    p.set_defaults(run=_lm_perplexity)

    p = sub.add_parser("evaluate", help="WER/CER of a model on a manifest")
    p.add_argument("--model", help="model file (.pt); default: the model inside the package")
    p.add_argument("--manifest", required=True)
    p.add_argument("--report", help="write the scores, S/D/I and every utterance's hypothesis and WER to this "
                                    "JSON file, and the worst utterances' alignments beside it (NAME.alignments.txt)")
    p.add_argument("--worst", type=int, default=20, help="utterances in the alignments file")
    p.add_argument("--format", choices=["text", "markdown"], default="text",
                   help="markdown: the scores as a table row for a RESULTS.md")
    p.add_argument("--device", choices=DEVICES, default="auto")
    _decoding_options(p)
    p.set_defaults(run=_evaluate)

    p = sub.add_parser("transcribe", help="transcribe audio files",
                       epilog="Inputs: files, folders (searched for audio files), glob patterns, '-' (paths on stdin). "
                              "Recordings of any length are read in windows. Exit code 1 when any input failed.")
    p.add_argument("inputs", nargs="+", metavar="INPUT")
    p.add_argument("--model", help="model file (.pt); default: the model inside the package")
    p.add_argument("--device", choices=DEVICES, default="auto")
    p.add_argument("--format", choices=["txt", "json", "srt", "vtt"], default="txt",
                   help="txt: FILE<TAB>TEXT; json: a JSON object a line, with each word's start, end and "
                        "confidence, the duration and the real-time factor; srt, vtt: captions")
    p.add_argument("--output-dir", help="write FILE's result to DIR/NAME.FORMAT instead of standard output")
    p.add_argument("--batch-size", type=int, help="short files transcribed together "
                   "(default: 8; with beam search 16 per decoding process)")
    _decoding_options(p)
    p.set_defaults(run=_transcribe)

    p = sub.add_parser("export", help="a model file for users: fp16 weights, optionally an LM and its weights")
    p.add_argument("checkpoint", help="a training checkpoint, e.g. exp/lj/best.pt")
    p.add_argument("out", help="the model file to write; the LM is copied beside it as OUT-stem.lm.*")
    p.add_argument("--lm", help="n-gram LM (ARPA, .gz too) that transcription with this model uses by default")
    p.add_argument("--lm-weight", type=float, help="with --lm: default 1")
    p.add_argument("--word-score", type=float, help="with --lm: default 0")
    p.add_argument("--beam", type=int, help="with --lm: default 50")
    p.add_argument("--beam-threshold", type=float, help="with --lm: default 25")
    p.add_argument("--beam-tokens", type=int, metavar="N", help="with --lm: default 0 (every unit)")
    p.add_argument("--hop-ms", type=float, metavar="MS", help="the frame step its front-end uses from now on "
                   "(default: the one it trained with; `asr tune-lm --hops-ms` chooses one)")
    p.add_argument("--decoding-from", metavar="MODEL", help="another model file's LM, weights, beam and frame step "
                   "('default': the packaged model's), e.g. the one a fine-tuning run started from; options given "
                   "here override them")
    p.add_argument("--lm-text", nargs="+", metavar="TEXT", help="your domain's text (a sentence a line): a 4-gram "
                   "of it is mixed into the LM, and its words the lexicon lacks get the G2P's pronunciations")
    p.add_argument("--lm-text-weight", type=float, default=LM_TEXT_WEIGHT, metavar="W",
                   help=f"the domain text's share of the mixture (default {LM_TEXT_WEIGHT:g})")
    p.add_argument("--format", choices=["pt", "onnx"], help="default: onnx for OUT.onnx, else pt. onnx: the acoustic "
                   "model for onnxruntime (features stay in Python: asr.checkpoint.OnnxRecognizer)")
    p.set_defaults(run=_export)

    p = sub.add_parser("tune-lm", help="search LM weight and word score on a dev set")
    p.add_argument("--model", required=True, help="checkpoint (.pt)")
    p.add_argument("--manifest", required=True, help="dev manifest (never the test set)")
    p.add_argument("--device", choices=DEVICES, default="auto")
    p.add_argument("--lm-weights", type=float, nargs="+", default=[0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0])
    p.add_argument("--word-scores", type=float, nargs="+", default=[-2.0, -1.0, 0.0, 1.0, 2.0])
    p.add_argument("--hops-ms", type=float, nargs="+", metavar="MS", help="also try these frame steps for the "
                   "front-end (default: the model's own): a step shorter than the one it trained with gives fast "
                   "talkers more frames")
    _decoding_options(p, tuning=True)
    p.set_defaults(run=_tune_lm)
    return parser


def _decoding_options(p, tuning: bool = False) -> None:
    g = p.add_argument_group("decoding (a model with its own LM: beam search with it, unless --greedy; otherwise greedy unless --beam or --lm is given)")
    g.add_argument("--beam", type=int,
                   help="beam size (default: an exported model's own, 1000 for the packaged one; 50 with --lm)")
    g.add_argument("--beam-threshold", type=float,
                   help="prune hypotheses this far below the best (default: a model's own, 12 for the packaged one; 25)")
    g.add_argument("--beam-tokens", type=int, metavar="N", help="per frame, extend hypotheses by the N likeliest "
                   "units only (default: a model's own, 8 for the packaged one; 0, every unit)")
    g.add_argument("--lm", required=tuning, help="n-gram LM: ARPA (.gz too) or KenLM binary; words or chars")
    g.add_argument("--lexicon", help="word spellings (default: every word of the ARPA LM)")
    g.add_argument("--decode-workers", type=int,
                   help="processes for beam search (default: one per CPU)")
    if not tuning:
        g.add_argument("--hop-ms", type=float, metavar="MS", help="the front-end's frame step (default: the "
                       "model's own; the packaged one's is 9.5, it trained with 10)")
        g.add_argument("--lm-weight", type=float, help="default 1, or the model's own")
        g.add_argument("--word-score", type=float, help="default 0, or the model's own")
        g.add_argument("--greedy", action="store_true", help="no beam search, even where the model has an LM (a phone model: its lexicon searched, no LM)")
        g.add_argument("--words", metavar="FILE", help="your words, one a line ('WORD', or 'WORD PH PH ...' as in "
                       "CMUdict; the G2P pronounces the rest), made decodable: they join the lexicon and the LM")
        g.add_argument("--word-boost", type=float, metavar="B", help="--words the LM lacks join it B log10 units "
                       "above its median word (default 1)")


def _decoder(args, recognizer):
    """The beam decoder the options ask for; else an exported model's own LM settings; else
    None (greedy)."""
    from asr.transcribe import cpus, decoder_for

    try:
        return decoder_for(recognizer, lm=args.lm, lexicon=args.lexicon, lm_weight=getattr(args, "lm_weight", None),
                           word_score=getattr(args, "word_score", None), beam=args.beam,
                           beam_threshold=args.beam_threshold, beam_tokens=args.beam_tokens,
                           greedy=getattr(args, "greedy", False),
                           workers=cpus() if args.decode_workers is None else args.decode_workers)
    except ValueError as e:
        raise UsageError(f"decoding options: {e}") from None


def _model(args):
    """The Model the command's --model, --device and decoding options ask for: the API's load_model."""
    from asr.transcribe import load_model

    try:
        return load_model(args.model, args.device, lm=args.lm, lexicon=args.lexicon, lm_weight=args.lm_weight,
                          word_score=args.word_score, beam=args.beam, beam_threshold=args.beam_threshold,
                          beam_tokens=args.beam_tokens, greedy=args.greedy,
                          decode_workers=args.decode_workers, hop_ms=_hop(args.hop_ms), words=args.words,
                          word_boost=args.word_boost)
    except ValueError as e:
        raise UsageError(f"decoding options: {e}") from None


def _prepare(args) -> int:
    from asr.prepare import prepare
    from asr.prepare.folder import FolderSplit, read_patterns

    options = [args.test, args.dev, args.test_from, args.dev_from, args.test_fraction, args.dev_fraction, args.group]
    split = None
    if args.corpus == "folder":
        split = FolderSplit(args.test + (read_patterns(args.test_from) if args.test_from else []),
                            args.dev + (read_patterns(args.dev_from) if args.dev_from else []),
                            args.test_fraction, args.dev_fraction, args.group)
    elif any(options):
        raise UsageError(f"the split options are for 'asr prepare folder'; {args.corpus} has its fixed split")
    if args.run_pipes and args.corpus != "kaldi":
        raise UsageError("--run-pipes is for 'asr prepare kaldi'")
    extra = {"split": split} if args.corpus == "folder" else {"run_pipes": args.run_pipes} if args.corpus == "kaldi" else {}
    result = prepare(args.corpus, args.src, args.out, **extra)
    for problem in result.problems:
        print(f"asr: warning: {problem}", file=sys.stderr)
    for s in result.splits:
        print(f"{s.manifest}\t{s.utterances} utterances\t{s.hours:.2f} h")
    for line in result.extras:
        print(line)
    if result.problems:  # the manifests hold the rest; a recipe stops here rather than train on less
        print(f"asr: error: {len(result.problems)} left out of the manifests (warnings above)", file=sys.stderr)
        return 1
    return 0


def _to_kaldi(args) -> int:
    from asr.data import read_manifest
    from asr.prepare.kaldi import write_data_dir

    utts = read_manifest(args.manifest)
    for path in write_data_dir(utts, args.out):
        print(path)
    print(f"{len(utts)} utterances from {len({u.audio_filepath for u in utts})} recordings")
    return 0


def _download(args) -> int:
    from asr.prepare.download import download_an4, download_librispeech

    if args.corpus == "an4":
        if args.subsets or args.lm:
            raise UsageError("AN4 is one archive: --subsets and --lm are for librispeech")
        lines = download_an4(args.out)
    elif not args.subsets and not args.lm:
        raise UsageError("nothing to download: give --subsets and/or --lm")
    else:
        lines = download_librispeech(args.out, args.subsets, args.lm)
    for line in lines:
        print(line)
    return 0


def _train(args) -> int:
    from asr import checkpoint
    from asr.config import config_from_dict, load_config
    from asr.train import train

    if args.resume and args.out and Path(args.resume).resolve() != Path(args.out).resolve():
        raise ConfigError(f"--resume {args.resume} and --out {args.out}: give one folder (--resume DIR alone will do)")
    out = args.resume or args.out
    if not out:
        raise ConfigError("give --out DIR for a new run, or --resume DIR to continue one")
    last = Path(out) / "last.pt"
    if not args.config and not (args.resume and last.exists()):
        raise ConfigError(f"no --config given, and {last} does not exist to take it from")
    overrides = list(args.set)
    if args.train:
        overrides.append(f"train.train_manifest={json.dumps(args.train)}")
    if args.dev:
        overrides.append(f"train.dev_manifest={json.dumps(args.dev)}")
    if args.init:
        overrides.append(f"train.init={json.dumps(args.init)}")
    if args.max_steps is not None:
        overrides.append(f"train.max_steps={args.max_steps}")
    if args.checkpoint_every is not None:
        overrides.append(f"train.checkpoint_every={args.checkpoint_every}")
    if args.skip_bad:
        overrides.append("train.skip_bad=true")
    if args.config:
        config = load_config(args.config, overrides)
    else:
        config = config_from_dict(checkpoint.load(last)["config"], overrides, str(last))
    if not config.train.train_manifest:
        raise ConfigError(f"{args.config}: no training manifest (give --train or train.train_manifest)")
    result = train(config, out, resume=bool(args.resume))
    if result.stopped_by:
        return 128 + signal.Signals[result.stopped_by].value
    # best_wer stays infinite when no epoch was scored on a dev set
    best = f"{result.best_wer:.2f}%" if math.isfinite(result.best_wer) else "n/a (no dev manifest)"
    skipped = f"; {result.skipped_steps} steps skipped for NaN/inf gradients" if result.skipped_steps else ""
    skipped += f"; {result.skipped_bad} bad manifest lines or audio files left out" if result.skipped_bad else ""
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"trained {result.steps} steps in {result.seconds:.0f} s; {result.parameters:,} parameters; "
              f"best dev WER {best}; {Path(out) / 'best.pt'}{skipped}")
    return 0


def _average(args) -> int:
    from asr import checkpoint

    checkpoint.save(args.out, checkpoint.average(args.checkpoints))
    print(f"{args.out}: mean of {len(args.checkpoints)} checkpoints")
    return 0


def _lm_build(args) -> int:
    import time

    from asr import lm

    start = time.monotonic()
    words = 0
    if args.order < 2:  # KenLM, the decoder's LM reader, refuses a unigram model
        raise UsageError(f"--order {args.order}: the decoder loads n-gram models of order 2 to 6")

    def counted(sentences):
        nonlocal words
        for sentence in sentences:
            words += len(sentence)
            yield sentence

    model = lm.build(counted(lm.read_sentences(args.text, args.units)), args.order, args.prune)
    _write_lm(model, args, start, f"order {args.order} from {words:,} {args.units}; ")
    return 0


def _write_lm(model, args, start: float, what: str = "") -> None:
    """ARPA to --out (and the spellings to --lexicon), and a line on what was written."""
    import time

    from asr import lm

    model.write_arpa(args.out)
    sizes = ", ".join(f"{n + 1}-grams {len(p):,}" for n, p in enumerate(model.probs))
    print(f"{args.out}: {what}{sizes}; {time.monotonic() - start:.1f} s")
    if args.lexicon:
        print(f"{args.lexicon}: {lm.write_lexicon(model.vocabulary, args.lexicon):,} words")


def _lm_mix(args) -> int:
    import time

    from asr import lm

    start = time.monotonic()
    if len(args.weights) != len(args.models):
        raise UsageError(f"{len(args.models)} models need {len(args.models)} --weights, got {len(args.weights)}")
    models = []
    for path in args.models:  # each in the acoustic model's words, which decoding spells
        model, dropped = lm.in_units(lm.read_arpa(path))
        models.append(model)
        if dropped:
            print(f"{path}: {dropped:,} words not made of letters and apostrophes left out")
    _write_lm(lm.mix(models, args.weights), args, start)
    return 0


def _lm_prune(args) -> int:
    import time

    from asr import lm

    start = time.monotonic()
    if args.threshold < 0:
        raise UsageError("--threshold must be >= 0")
    model = lm.read_arpa(args.model)
    pruned = lm.prune_entropy(model, args.threshold)
    pruned.write_arpa(args.out)
    sizes = ", ".join(f"{n + 1}-grams {len(a):,} of {len(b):,}" for n, (a, b) in enumerate(zip(pruned.probs, model.probs)))
    print(f"{args.out}: {sizes}; {time.monotonic() - start:.1f} s")
    return 0


def _lm_perplexity(args) -> int:
    from asr import lm

    model = lm.read_arpa(args.model)
    for path in args.text:
        r = lm.perplexity(model, lm.read_sentences([path]))
        print(f"{path}: {r.sentences:,} sentences, {r.words:,} words, OOV {r.oov:,} ({r.oov_rate:.2%}), "
              f"perplexity {r.perplexity:.1f}")
    return 0


def _evaluate(args) -> int:
    from asr.transcribe import worst

    model = _model(args)
    decoding = model.decoder.config.describe() if model.decoder else "greedy"  # what made the figure
    result = model.evaluate(args.manifest)
    for problem in result.failed:
        print(f"asr: error: {problem} (not scored)", file=sys.stderr)
    if args.report:
        score = result.score._asdict()
        if not result.score.utterances:  # nothing scored: no figure (null), rather than a perfect 0%
            score.update(wer=None, cer=None)
        report = {**score, "decoding": decoding, "failed": result.failed,
                  "utterances": [{**u._asdict(), "score": u.score._asdict()} for u in result.utterances]}
        Path(args.report).write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        Path(args.report).with_suffix(".alignments.txt").write_text(worst(result, args.worst), encoding="utf-8")
    s = result.score
    if args.format == "markdown":
        wer, cer = (f"{s.wer:.2f}%", f"{s.cer:.2f}%") if s.utterances else ("n/a", "n/a")  # nothing scored
        print("| manifest | utterances | WER | CER | substitutions | deletions | insertions | words |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        print(f"| {args.manifest} | {s.utterances} | {wer} | {cer} | {s.substitutions} | {s.deletions} "
              f"| {s.insertions} | {s.words} |")
    else:
        print(f"decoding: {decoding}")
        print(f"substitutions {s.substitutions} deletions {s.deletions} insertions {s.insertions} "
              f"of {s.words} words; {s.char_errors} character errors of {s.chars}")
        print(s.summary())
    return 1 if result.failed else 0


def _transcribe(args) -> int:
    from tqdm import tqdm

    from asr.audio import find_audio

    if args.batch_size is not None and args.batch_size < 1:
        raise UsageError("--batch-size must be at least 1")
    paths, problems = find_audio(args.inputs, sys.stdin if "-" in args.inputs else None)
    if args.format in ("srt", "vtt") and len(paths) > 1 and not args.output_dir:
        raise UsageError(f"--format {args.format} makes one caption file per input: give --output-dir for several")
    for problem in problems:
        print(f"asr: error: {problem}", file=sys.stderr)
    if args.output_dir:  # now, not after the first transcript: an unwritable folder is one line
        Path(args.output_dir).mkdir(parents=True, exist_ok=True)
    model = _model(args)
    failed = len(problems)
    written: set[str] = set()  # output names used in this call
    # A bar on stderr (a terminal only) when there is more than one file; results go to stdout.
    bar = tqdm(total=len(paths), unit="file", disable=None if len(paths) > 1 else True, file=sys.stderr)
    for t in model.stream(paths, timestamps=args.format != "txt", batch_size=args.batch_size):
        bar.update()
        if t.error:
            failed += 1
            bar.write(f"asr: error: {t.error}", file=sys.stderr)
            continue
        text = _render(t, args.format)
        if args.output_dir:
            # a/x.wav and b/x.wav both make x.FORMAT: the second becomes x-2.FORMAT, never overwrites
            stem = Path(t.path).stem
            name, n = stem, 1
            while name in written:
                n += 1
                name = f"{stem}-{n}"
            written.add(name)
            out = Path(args.output_dir) / f"{name}.{args.format}"
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(text, encoding="utf-8")
        else:
            bar.write(text, end="", file=sys.stdout)
    bar.close()
    return 1 if failed else 0


def _render(t, fmt: str) -> str:
    from asr.transcribe import captions, to_srt, to_vtt

    if fmt == "txt":
        return f"{t.path}\t{t.text}\n"
    if fmt == "json":
        words = [{"word": w.text, "start": w.start, "end": w.end, "confidence": w.confidence} for w in t.words]
        entry = {"path": t.path, "text": t.text, "duration": round(t.duration, 3), "rtf": round(t.rtf, 4),
                 "words": words}
        return json.dumps(entry, ensure_ascii=False) + "\n"
    return (to_srt if fmt == "srt" else to_vtt)(captions(t.words))


def _export(args) -> int:
    from asr import checkpoint
    from asr.decode import BeamConfig

    settings = {k: v for k, v in (("lm_weight", args.lm_weight), ("word_score", args.word_score),
                                  ("beam_size", args.beam), ("beam_threshold", args.beam_threshold),
                                  ("beam_size_token", args.beam_tokens)) if v is not None}
    if args.decoding_from:
        if args.lm:
            raise UsageError("--decoding-from brings its model's LM: give it or --lm, not both")
        source = checkpoint.load_recognizer(None if args.decoding_from == "default" else args.decoding_from)
        if source.decoding is None or not source.decoding.lm:
            raise UsageError(f"--decoding-from {args.decoding_from}: that model has no LM of its own")
        args.lm = source.decoding.lm
        settings = {**{k: getattr(source.decoding, k) for k in ("lm_weight", "word_score", "beam_size",
                                                                  "beam_threshold", "beam_size_token")}, **settings}
        if args.hop_ms is None:
            args.hop_ms = source.config.features.hop_ms
    if settings and not args.lm:  # they are the exported LM's settings: without one, nothing keeps them
        raise UsageError("--lm-weight, --word-score and the --beam options are settings for the model's LM: give --lm")
    if args.lm_text and not args.lm:
        raise UsageError("--lm-text is mixed into the model's LM: give --lm or --decoding-from")
    if (args.format or ("onnx" if args.out.endswith(".onnx") else "pt")) == "onnx":
        if args.lm:
            raise UsageError("an ONNX export holds the acoustic model only; decode its output with --lm in Python")
        try:
            import onnx, onnxruntime  # noqa: F401, E401
        except ImportError:
            raise UsageError('ONNX export needs onnx and onnxruntime: pip install onnx onnxruntime') from None
        size = checkpoint.export_onnx(args.checkpoint, args.out)
        print(f"{args.out}: {size / 1e6:.1f} MB (ONNX, opset 17; fp32)")
        return 0

    try:
        decoding = BeamConfig(**settings)
    except ValueError as e:
        raise UsageError(f"decoding options: {e}") from None
    with tempfile.TemporaryDirectory(prefix="asr-export-") as tmp:
        words = None
        if args.lm_text:
            args.lm, words = _domain_lm(args, Path(tmp))
        size = checkpoint.export(args.checkpoint, args.out, args.lm, decoding if args.lm else None, _hop(args.hop_ms),
                                 words)
    lm = (f", with {args.lm} (--lm-weight {decoding.lm_weight:g} --word-score {decoding.word_score:g} --beam "
          f"{decoding.beam_size} --beam-tokens {decoding.beam_size_token} --beam-threshold {decoding.beam_threshold:g})"
          if args.lm else "")
    hop = f"; frame step {args.hop_ms:g} ms" if args.hop_ms is not None else ""
    print(f"{args.out}: {size / 1e6:.1f} MB{lm}{hop}")
    return 0


def _domain_lm(args, tmp: Path):
    """The LM mixed with an n-gram of --lm-text, written to `tmp`, and the G2P's pronunciations
    of its text's words that the model's lexicon lacks (None for a letter model)."""
    import time

    from asr import checkpoint, lm
    from asr.transcribe import read_words

    start = time.monotonic()
    mixed = lm.adapt(lm.read_arpa(args.lm), args.lm_text, args.lm_text_weight)
    out = tmp / "domain.arpa.gz"
    mixed.write_arpa(out)
    vocab = checkpoint.load_recognizer(args.checkpoint).vocab
    words = None
    if vocab.pronunciations:
        new = sorted({w for s in lm.read_sentences(args.lm_text) for w in s} - vocab.pronunciations.keys())
        words, problems = read_words(vocab, new, "--lm-text")
        for problem in problems:
            print(f"asr: {problem}: not in the lexicon", file=sys.stderr)
    print(f"{Path(args.lm).name} mixed with {', '.join(args.lm_text)} (weight {args.lm_text_weight:g}): "
          f"{', '.join(f'{len(p):,} {n + 1}-grams' for n, p in enumerate(mixed.probs))}; "
          f"{len(words or {})} words pronounced by the G2P; {time.monotonic() - start:.0f} s")
    return str(out), words


def _hop(hop_ms: float | None) -> float | None:
    """The --hop-ms value, checked before any work is done."""
    from asr.checkpoint import check_hop

    try:
        check_hop(hop_ms)
    except ValueError:
        raise UsageError(f"--hop-ms must be a positive number of milliseconds, not {hop_ms:g}") from None
    return hop_ms


def _tune_lm(args) -> int:
    from asr.checkpoint import load_recognizer, resolve_device, with_hop
    from asr.transcribe import tune

    if not all(math.isfinite(x) for x in args.lm_weights + args.word_scores):  # before any work, not after it
        raise UsageError("--lm-weights and --word-scores must be finite numbers")
    hops = [_hop(h) for h in args.hops_ms] if args.hops_ms else [None]
    device = resolve_device(args.device)
    recognizer = load_recognizer(args.model, device)
    decoder = _decoder(args, recognizer)
    points = []
    for hop in hops:  # the acoustic model runs once a step; the model file and the LM are read once
        points += tune(with_hop(recognizer, hop), args.manifest, decoder, args.lm_weights, args.word_scores)
    print(("hop_ms\t" if args.hops_ms else "") + "lm_weight\tword_score\tWER\tCER")
    for p in sorted(points, key=lambda p: (-p.hop_ms, p.lm_weight, p.word_score)):
        print((f"{p.hop_ms:g}\t" if args.hops_ms else "") + f"{p.lm_weight:g}\t{p.word_score:g}\t{p.score.wer:.2f}\t{p.score.cer:.2f}")
    best = min(points, key=lambda p: (p.score.wer, p.score.cer))  # the first tried among equals
    hop = f"--hop-ms {best.hop_ms:g} " if args.hops_ms else ""
    print(f"best: {hop}--lm-weight {best.lm_weight:g} --word-score {best.word_score:g}: {best.score.summary()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
