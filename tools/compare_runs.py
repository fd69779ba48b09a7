"""Runs side by side: a Markdown table of greedy / beam + LM WER on each set, from what stage 4 of
a recipe left in each run's decode/ folder (`asr evaluate --report` JSON). What an ablation pastes.

    python tools/compare_runs.py exp/default_real exp/default exp/default_seed1 \
        --sets dev an4_dev fsdd_dev cathy_dev lj_dev an4_test libri_test cathy_test fsdd_test lj_test

The best figure of each row and kind is in bold; '-' where a run has no such report.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def wer(run: Path, kind: str, name: str) -> float | None:
    path = run / "decode" / f"{kind}_{name}.json"
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))["wer"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="experiment folders (each with decode/)")
    parser.add_argument("--sets", nargs="+", required=True)
    args = parser.parse_args()
    missing = [str(r) for r in args.runs if not (r / "decode").is_dir()]
    if missing:
        parser.error(f"no decode/ folder in {', '.join(missing)}")
    print("| set | " + " | ".join(f"`{r}`" for r in args.runs) + " |")
    print("|---|" + "---:|" * len(args.runs))
    for name in args.sets:
        cells = [[wer(r, kind, name) for kind in ("greedy", "lm")] for r in args.runs]
        best = [min((c[k] for c in cells if c[k] is not None), default=None) for k in (0, 1)]

        def show(value, k):
            if value is None:
                return "-"
            return f"**{value:.2f}**" if value == best[k] and len(args.runs) > 1 else f"{value:.2f}"

        print(f"| {name} | " + " | ".join(f"{show(c[0], 0)} / {show(c[1], 1)}" for c in cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
