"""Print the per-epoch training curve of a run as a markdown table.

    python tools/curve.py exp/lj/log.jsonl [--every N]
"""

from __future__ import annotations

import argparse
import json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("log", help="log.jsonl written by asr train")
    parser.add_argument("--every", type=int, default=1, help="show every Nth epoch (and always the last)")
    args = parser.parse_args()
    with open(args.log, encoding="utf-8") as f:
        epochs = [e for e in map(json.loads, f) if "dev_wer" in e]
    if not epochs:
        raise SystemExit(f"{args.log}: no epoch lines")
    print("| epoch | step | train loss | dev loss | dev WER % | dev CER % | minutes |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for i, e in enumerate(epochs):
        if i % args.every and i != len(epochs) - 1:
            continue
        print(f"| {e['epoch']} | {e['step']} | {_f(e['train_loss'], 3)} | {_f(e['dev_loss'], 3)} | "
              f"{_f(e['dev_wer'], 2)} | {_f(e['dev_cer'], 2)} | {e['seconds'] / 60:.1f} |")


def _f(value, digits: int) -> str:
    """A figure, or '-' where the run had none (no dev set: logged as null)."""
    return "-" if value is None else f"{value:.{digits}f}"


if __name__ == "__main__":
    main()
