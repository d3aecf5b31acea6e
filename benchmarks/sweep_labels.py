"""Do two backends give every cell of a sweep the same phase? Compares sweep folders of one spec,
cell by cell, against the first (the reference): phase, fit step and generalization step, and
lists the cells whose phase differs with what each folder recorded for them.

The grid of ``benchmarks/sweep_ensemble.py`` at its full budget (100 cells, 2e4 steps), trained
by the process pool (sequential runs, one per worker), the eager ensemble and the compiled
ensemble, then compared:

    grokscope sweep benchmarks/liu_grid_100.yaml --out runs/labels/process --backend process --workers 2
    grokscope sweep benchmarks/liu_grid_100.yaml --out runs/labels/eager --backend ensemble
    grokscope sweep benchmarks/liu_grid_100.yaml --out runs/labels/compiled --backend ensemble --compile
    python benchmarks/sweep_labels.py runs/labels/process runs/labels/eager runs/labels/compiled
"""

from __future__ import annotations

import argparse
import textwrap

import pandas as pd

from grokscope.sweep import open_sweep

COMPARED = ["phase", "fit_step", "generalization_step"]
SHOWN = [*COMPARED, "final/train/acc", "final/test/acc"]


def same(a: pd.Series, b: pd.Series) -> pd.Series:
    """Equal, counting two missing values (a cell that never fit) as equal."""
    return (a == b) | (a.isna() & b.isna())


def compare(reference: str, other: str) -> pd.DataFrame:
    """One row per cell of both sweeps: the axes, and each compared column from both folders."""
    ref, oth = open_sweep(reference), open_sweep(other)
    if ref.axes != oth.axes:
        raise SystemExit(f"{other} sweeps {oth.axes}, {reference} sweeps {ref.axes}: not the same grid")
    columns = ["cell", *ref.axes, *SHOWN]
    joined = ref.table[columns].merge(oth.table[["cell", *SHOWN]], on="cell", suffixes=("", " (other)"))
    if len(joined) != len(ref.table) or len(joined) != len(oth.table):
        raise SystemExit(f"{reference} has {len(ref.table)} cells, {other} {len(oth.table)}, {len(joined)} in both")
    return joined


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reference", help="sweep folder the others are compared with")
    parser.add_argument("others", nargs="+", help="sweep folders of the same spec")
    args = parser.parse_args()
    print(f"reference {args.reference}: {open_sweep(args.reference).table['phase'].value_counts().to_dict()}")
    for other in args.others:
        joined = compare(args.reference, other)
        counts = open_sweep(other).table["phase"].value_counts().to_dict()
        print(f"{other}: {counts}")
        for column in COMPARED:
            a, b = joined[column], joined[f"{column} (other)"]
            line = f"  same {column:20s} {same(a, b).sum():4d} / {len(joined)}"
            if column != "phase":
                line += f" ({(a.isna() & b.isna()).sum()} cells without one in either)"
            print(line)
        differing = joined[~same(joined["phase"], joined["phase (other)"])]
        if len(differing):
            print("  cells with another phase (reference, then other):")
            print(textwrap.indent(differing.drop(columns="cell").to_string(index=False), "  "))


if __name__ == "__main__":
    main()
