"""Plot a training run's log: loss per logging interval and per epoch, dev WER/CER, learning rate.

    python tools/plot_training.py exp/lj/log.jsonl --out exp/lj/curve.png

Needs matplotlib (`pip install -e ".[tools]"`).
"""

from __future__ import annotations

import argparse
import json
import sys


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("log", help="log.jsonl written by asr train")
    parser.add_argument("--out", required=True, help="image file (.png, .svg, .pdf)")
    parser.add_argument("--title", help="default: the log's path")
    args = parser.parse_args()
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: no display needed on a cluster node
        import matplotlib.pyplot as plt
    except ImportError:
        print("plot_training: needs matplotlib: pip install -e '.[tools]'", file=sys.stderr)
        return 1
    try:
        with open(args.log, encoding="utf-8") as f:
            entries = [json.loads(line) for line in f if line.strip()]
    except (OSError, json.JSONDecodeError) as e:
        print(f"plot_training: {args.log}: {e}", file=sys.stderr)
        return 1
    steps = [e for e in entries if "loss" in e and e["loss"] is not None]
    epochs = [e for e in entries if "train_loss" in e]
    if not steps and not epochs:
        print(f"plot_training: {args.log}: no training lines", file=sys.stderr)
        return 1

    fig, (loss_ax, wer_ax, lr_ax) = plt.subplots(3, 1, figsize=(8, 9), sharex=True,
                                                 gridspec_kw={"height_ratios": [3, 2, 1]})
    loss_ax.plot([e["step"] for e in steps], [e["loss"] for e in steps], lw=0.8, alpha=0.6, label="train (interval)")
    loss_ax.plot(*_xy(epochs, "train_loss"), "o-", label="train (epoch)")
    loss_ax.plot(*_xy(epochs, "dev_loss"), "s-", label="dev")
    loss_ax.set_ylabel("CTC loss per character")
    loss_ax.set_yscale("log")
    loss_ax.legend()
    skipped = [e["step"] for e in steps if e.get("skipped")]
    for step in skipped:
        loss_ax.axvline(step, color="red", lw=0.5, alpha=0.5)
    if skipped:
        loss_ax.text(0.99, 0.97, f"red: {len(skipped)} intervals with skipped NaN/inf steps",
                     transform=loss_ax.transAxes, ha="right", va="top", fontsize=8)
    if any(e.get("units") == "phones" for e in epochs):  # its greedy output is phones, not words
        wer_ax.plot(*_xy(epochs, "dev_wer"), "o-", label="dev phone error rate")
    else:
        wer_ax.plot(*_xy(epochs, "dev_wer"), "o-", label="dev WER")
        wer_ax.plot(*_xy(epochs, "dev_cer"), "s-", label="dev CER")
    wer_ax.set_ylabel("%")
    wer_ax.set_ylim(0, 105)
    wer_ax.legend()
    lr_ax.plot([e["step"] for e in steps], [e["lr"] for e in steps])
    lr_ax.set_ylabel("learning rate")
    lr_ax.set_xlabel("step")
    for ax in (loss_ax, wer_ax, lr_ax):
        ax.grid(alpha=0.3)
    last = epochs[-1] if epochs else steps[-1]
    fig.suptitle(args.title or f"{args.log}: {last.get('epoch', '?')} epochs, {last['step']} steps, "
                 f"{last.get('seconds', 0) / 60:.1f} min")
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    print(args.out)
    return 0


def _xy(entries, key):
    points = [(e["step"], e[key]) for e in entries if e.get(key) is not None]
    return [p[0] for p in points], [p[1] for p in points]


if __name__ == "__main__":
    sys.exit(main())
