"""Write a recipe's RESULTS.md from what its stages left in EXP: the decode outputs, the
training log and checkpoint, the exact commands (EXP/commands.txt) and the machine.

    python tools/results.py exp/librispeech --sets dev-clean test-clean --title "LibriSpeech" \
        --out recipes/librispeech/RESULTS.md [--curve]

--curve also draws the training curve (tools/plot_training.py) next to RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import shlex
import subprocess
import sys
from pathlib import Path

import torch

from asr.transcribe import cpus

FINAL = re.compile(r"WER (\S+)% CER (\S+)% \((\d+) utterances\)")
# Measured GPU times (docs/benchmarks.md), printed only in the recipes they are about.
H100_960H = ("Expected epoch time on one H100: about 23 minutes of training steps per epoch of LibriSpeech's 960 h "
             "with conf/librispeech_960h.yaml (its step, measured by `tools/bench_train.py`: 2,470 audio-seconds per "
             "second in bf16; loading and the dev pass not counted; docs/benchmarks.md).")
H100_AN4 = "On one H100 (bf16) this recipe's 60 epochs took 147 s of training (docs/benchmarks.md)."
LIBRISPEECH_PEERS = """Peers with similar models on the full 960 h (their published figures, for scale):
deepspeech.pytorch 5×1024 BiLSTM, greedy: 11.20 / 31.31 WER on test-clean / test-other;
ESPnet BLSTMP, no LM: 7.7 / 21.9; DeepSpeech2 with an LM: 5.33 / 13.25."""
# Other systems on the same 130 AN4 test utterances (773 words, 2,565 characters): (system, WER, CER, source).
AN4_PEERS = [
    ("ESPnet1 BLSTMP 4×320, CTC only, no LM (egs/an4/asr1/RESULTS)", "-", "12.6", "published"),
    ("ESPnet1 BLSTMP, CTC/attention hybrid (egs/an4/asr1/RESULTS)", "-", "15.3", "published"),
    ("ESPnet2 Transformer, BPE 30, speed perturbation, + LM (egs2/an4/asr1/README.md)", "7.4", "3.6", "published"),
    ("ESPnet2 the same, no LM", "7.6", "3.6", "published"),
    ("Whisper tiny.en, off the shelf, no AN4 training", "30.9", "-", "measured on this machine, quoted from issue 13"),
    # python tools/peer_pocketsphinx.py --manifest data/an4/test.jsonl
    ("PocketSphinx, Debian's generic en-us model, no AN4 training", "50.71", "40.97", "measured on this machine: "
     "`tools/peer_pocketsphinx.py`"),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("exp", type=Path)
    parser.add_argument("--sets", nargs="+", required=True)
    parser.add_argument("--title", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--curve", action="store_true", help="draw the training curve next to --out")
    parser.add_argument("--peers", choices=["librispeech", "an4"], help="add the peers' figures on this corpus")
    parser.add_argument("--notes", type=Path, help="a Markdown file to include after the figures (e.g. an ablation)")
    parser.add_argument("--column", action="append", default=[], metavar="LABEL=PATTERN",
                        help="another system's WER / CER beside ours, from the JSON reports PATTERN names with {set} "
                        "for the set (`asr evaluate --report`, tools/peer_pocketsphinx.py --report); repeatable")
    args = parser.parse_args()
    exp = args.exp

    columns = [c.split("=", 1) for c in args.column]
    if any(len(c) != 2 or "{set}" not in c[1] for c in columns):
        parser.error("--column takes LABEL=PATTERN, the pattern with {set} in it")
    rows = []
    for s in args.sets:
        row = [s]
        for kind in ("greedy", "lm"):
            found = _final(exp / "decode" / f"{kind}_{s}.txt")
            row += [f"{found[0]}%", f"{found[1]}%"] if found else ["n/a", "n/a"]
        row += [_report_score(Path(pattern.format(set=s))) for _, pattern in columns]
        rows.append(row)
    tuned = _last_line(exp / "decode" / "tune.txt")
    checkpoint = torch.load(exp / "best.pt", map_location="cpu", weights_only=True)
    model = checkpoint["config"]["model"]
    params = sum(t.numel() for t in checkpoint["model"].values())
    epochs = [json.loads(line) for line in (exp / "log.jsonl").read_text().splitlines()
              if line.strip() and "train_loss" in line]
    seconds = epochs[-1]["seconds"] if epochs else float("nan")
    commands = list(dict.fromkeys((exp / "commands.txt").read_text().splitlines())) if (exp / "commands.txt").exists() else []

    lexicon = checkpoint.get("lexicon")  # a phone model: no greedy words, its lexicon searched without the LM
    first = "no LM (lexicon search)" if lexicon else "greedy"
    lines = [f"# {args.title}: results", "",
             f"Written by `python tools/results.py {shlex.join(sys.argv[1:])}` from `{exp}`.", "",
             f"| set | {first} WER | {first} CER | beam + LM WER | beam + LM CER |"
             + "".join(f" {label} WER / CER |" for label, _ in columns),
             "|---|---:|---:|---:|---:|" + "---:|" * len(columns)]
    lines += [f"| {' | '.join(r)} |" for r in rows]
    lines += ["", f"Decoding (LM weights, and frame step if tried; tuned by the `asr tune-lm` command below, on a dev set): `{tuned}`" if tuned else "No LM tuning output.", "",
              f"Model: BiLSTM {model['layers']} × {model['hidden']} per direction, {model['stack']} stacked frames, "
              f"{params:,} parameters; best epoch {checkpoint.get('epoch', '?')} (step {checkpoint.get('step', '?')}); "
              + (f"units: {len(checkpoint['vocab']) - 2} phones, words spelt through a "
                 f"{len({line.split()[0] for line in lexicon.splitlines()}):,}-word lexicon." if lexicon else "units: letters."),
              f"Training: {len(epochs)} epochs logged, {seconds / 60:.1f} minutes of training wall time.",
              f"Hardware: {_hardware()}."]
    if args.peers == "librispeech":
        lines += [H100_960H, "", LIBRISPEECH_PEERS]
    elif args.peers == "an4":  # ours beside theirs, on the last set named (the test set)
        test = rows[-1]
        lines += [H100_AN4, "", f"Beside other systems on the same test set ({test[0]}: 130 utterances, 773 words, 2,565 characters):",
                  "", "| system | WER | CER | source |", "|---|---:|---:|---|"]
        lines += [f"| {' | '.join(peer)} |" for peer in AN4_PEERS]
        lines += [f"| ours, greedy | {test[1]} | {test[2]} | this run |",
                  f"| ours, beam + LM | {test[3]} | {test[4]} | this run |"]
    if args.notes:
        if not args.notes.exists():
            parser.error(f"--notes {args.notes}: no such file")
        lines += ["", args.notes.read_text(encoding="utf-8").strip()]
    if args.curve:  # a curve that cannot be drawn (no matplotlib) costs the curve, not the results
        png = args.out.with_name("curve.png")
        drawn = subprocess.run([sys.executable, str(Path(__file__).with_name("plot_training.py")), str(exp / "log.jsonl"),
                                "--out", str(png), "--title", args.title], stdout=subprocess.DEVNULL)
        if drawn.returncode == 0:
            lines += ["", f"![training curve]({png.name})"]
        else:
            print(f"results: no training curve (tools/plot_training.py exited {drawn.returncode})", file=sys.stderr)
    lines += ["", "Commands, in the order the stages ran them:", "", "```", *commands, "```", ""]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines), encoding="utf-8")
    print(args.out)
    return 0


def _final(path: Path):
    line = _last_line(path)
    m = FINAL.search(line or "")
    return m.groups() if m else None


def _report_score(path: Path) -> str:
    """'WER / CER' from a JSON report: `asr evaluate --report` has them at the top, the peer tools under "score"."""
    if not path.exists():
        return "n/a"
    report = json.loads(path.read_text(encoding="utf-8"))
    score = report.get("score", report)
    if score["wer"] is None:  # nothing was scored
        return "n/a"
    return f"{score['wer']:.2f}% / {score['cer']:.2f}%"


def _last_line(path: Path) -> str | None:
    if not path.exists():
        return None
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return lines[-1] if lines else None


def _hardware() -> str:
    try:
        gpus = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                              text=True, timeout=20).stdout.split("\n")
        gpus = [g for g in gpus if g.strip()]
        if gpus:
            return f"{len(gpus)} × {gpus[0]}"
    except (OSError, subprocess.SubprocessError):
        pass
    cpu = platform.processor() or "CPU"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {cpus()} cores, no GPU"


if __name__ == "__main__":
    sys.exit(main())
