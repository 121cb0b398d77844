"""Did training move the demo beyond seed noise? The bar of issue 29, read from a finished study's database.

    python bench/demo_power.py hybridscale-demo/hybridscale.db [--metric nDCG@10]

For every eval set, setting and passage side with sw or yo queries, each
trained series at the study's largest size against the untrained model: the
mean and sample sd over seeds, the difference, and whether it reaches the bar
max(0.02, 3 x sd). The demo's design was chosen so that some row does; this
prints the evidence for a given run of it rather than trusting the pilot.
"""

from __future__ import annotations

import argparse

from hybridscale.report import passage_languages
from results.plot_data import scaling_panels
from storage.db import open_db
from storage.queries import tidy_metrics
from vocabulary.languages import TARGET_LANGUAGES
from vocabulary.records import ALL
from vocabulary.series import SeriesName

#: The issue's smallest difference worth calling movement, whatever the seed spread.
MINIMUM_MOVE = 0.02


def bar_rows(rows: list[dict], metric: str) -> list[tuple[str, ...]]:
    """(cell, series, untrained, mean ± sd, difference, bar, moved) at the largest size of each series."""
    cells = sorted({(r["eval_set"], r["setting"], r["passage_language"]) for r in rows if r["metric"] == metric})
    table = []
    for eval_set, setting, passages in cells:
        if passages == ALL and len(passage_languages(rows, eval_set)) < 2:
            continue  # a pool of one passage language repeats that language's rows (AfriQA's English passages)
        panels = scaling_panels(rows, eval_set=eval_set, setting=setting, metric=metric, passage_language=passages,
                                query_languages=TARGET_LANGUAGES)
        for panel in panels:
            untrained = [b for b in panel.baselines if isinstance(b.label, SeriesName) and b.label.untrained]
            if not untrained or not panel.series:
                continue
            reference = untrained[0].value
            for series in panel.series:
                point = series.points[-1]
                difference = point.mean - reference
                bar = max(MINIMUM_MOVE, 3 * point.sd)
                cell = f"{eval_set} {setting} {panel.query_language}→{passages}"
                trained = f"{point.mean:.4f} ± {point.sd:.4f} ({point.seed_count} seeds)"
                table.append((cell, f"{series.label} n={point.size}", f"{reference:.4f}", trained,
                              f"{difference:+.4f}", f"{bar:.4f}", "yes" if abs(difference) >= bar else "no"))
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("database", help="a study's SQLite file, e.g. hybridscale-demo/hybridscale.db")
    parser.add_argument("--metric", default="nDCG@10")
    args = parser.parse_args()
    db = open_db(args.database, read_only=True)
    try:
        table = bar_rows(tidy_metrics(db), args.metric)
    finally:
        db.dispose()
    print("| cell | series | untrained | trained (mean ± sd) | difference | max(0.02, 3 sd) | moved? |")
    print("|---|---|---|---|---|---|---|")
    for row in table:
        print("| " + " | ".join(row) + " |")
    print(f"\n{sum(row[-1] == 'yes' for row in table)} of {len(table)} rows moved beyond the bar.")


if __name__ == "__main__":
    main()
