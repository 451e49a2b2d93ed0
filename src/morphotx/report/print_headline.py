"""``python -m morphotx.report.print_headline results/<name>/leaderboard/headline.parquet``: the
headline for a terminal (what ``make run`` and ``make quick`` end with).
"""

from __future__ import annotations

import pandas as pd

from .headline_text import best_of_input_intro, best_of_input_parts, is_well_holdout, summary_lines


def main(argv: list[str] | None = None) -> int:
    """``python -m morphotx.report.print_headline results/<name>/leaderboard/headline.parquet``: print the
    headline for a terminal (what ``make run`` ends with).
    """
    import sys

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m morphotx.report.print_headline <headline.parquet>", file=sys.stderr)
        return 2
    table = pd.read_parquet(args[0])
    print(f"Headline ({args[0].removesuffix('.parquet')}.md): configurations chosen per split on its validation "
          "compounds; test scores with CIs; delta with its CI and minimum detectable effect (MDE)")
    if is_well_holdout(table):
        print("  WARNING: split.mode well_holdout — test rows are wells of training compounds; NOT an unseen-compound test")
    for line in summary_lines(table):
        print("  " + line)
    parts = best_of_input_parts(table, minus="-", bold=False)
    if parts:
        print(f"{best_of_input_intro(table)}:")
        for part in parts:
            print("  " + part)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
