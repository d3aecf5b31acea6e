"""Sweep figures: the phase diagram's grid (majority phase over seeds, median steps) from a
sweep table with known answers, files written, and `grokscope report SWEEP_DIR`."""

import sys

import numpy as np
import pandas as pd
import yaml

from grokscope.cli import main
from grokscope.report.sweep import (
    cell_phase,
    draw_sweep_figures,
    grid,
    plot_metric_heatmap,
    plot_phase_diagram,
    plot_steps_vs_axis,
)
from grokscope.sweep import open_sweep

# (a, b) -> three seeds' (status, phase, generalization step)
GROUPS = {
    (1, 10): [("finished", "grokking", 3000), ("finished", "grokking", 5000), ("finished", "comprehension", 400)],
    (1, 20): [("finished", "memorization", None)] * 3,
    (2, 10): [("finished", "confusion", None), ("finished", "grokking", 2000), ("finished", "confusion", None)],
    (2, 20): [("diverged", None, None), ("diverged", None, None), ("finished", "memorization", None)],
    (3, 10): [("failed", None, None)] * 3,
    (3, 20): [("finished", "comprehension", 100), ("finished", "grokking", 2100), ("finished", "confusion", None)],
}


def fake_sweep(folder):
    """A sweep folder whose table says what GROUPS says (no run folders needed to draw)."""
    folder.mkdir()
    rows, cells = [], []
    for (a, b), seeds in GROUPS.items():
        for seed, (status, phase, gen) in enumerate(seeds):
            cell = f"a={a}_b={b}_seed={seed}"
            values = {"x.a": a, "y.b": b, "seed": seed}
            cells.append({"id": cell, "values": values})
            acc = 1.0 if gen is not None else 0.5
            rows.append(
                {
                    "cell": cell,
                    "path": f"cells/{cell}",
                    **values,
                    "status": status,
                    "phase": phase,
                    "generalization_step": gen,
                    "final/test/acc": acc,
                }
            )
    record = {"spec": {"name": "fake", "base": "x"}, "axes": ["x.a", "y.b", "seed"], "cells": cells}
    (folder / "sweep.yaml").write_text(yaml.safe_dump(record, sort_keys=False))
    table = pd.DataFrame(rows)
    table["generalization_step"] = table["generalization_step"].astype("Float64")
    table.to_parquet(folder / "sweep.parquet", index=False)
    return open_sweep(folder)


def test_phase_grid_takes_the_majority_of_finished_seeds(tmp_path):
    sweep = fake_sweep(tmp_path / "s")
    xs, ys, phases = grid(sweep)
    assert xs == [1, 2, 3] and ys == [10, 20]
    expected = np.array(
        [["grokking", "confusion", "failed"], ["memorization", "memorization", "comprehension"]], dtype=object
    )
    assert (phases == expected).all()  # (3, 20): a three-way tie goes to the first of the four phases
    _, _, steps = grid(sweep, "generalization_step")
    assert steps[0, 0] == 3000  # median of 3000, 5000, 400
    assert steps[0, 1] == 2000
    assert np.isnan(steps[1, 0]) and np.isnan(steps[0, 2])
    assert cell_phase(pd.DataFrame({"status": ["running"], "phase": [None]})) == "not run"


def test_figures_are_written_and_report_draws_the_phase_diagram(tmp_path, monkeypatch, capsys):
    sweep = fake_sweep(tmp_path / "s")
    assert [p.name for p in plot_phase_diagram(sweep, tmp_path / "f" / "phase.png")] == ["phase.png", "phase.svg"]
    assert (tmp_path / "f" / "phase.png").stat().st_size > 1000
    plot_metric_heatmap(sweep, "final/test/acc", tmp_path / "f" / "acc.png")
    plot_steps_vs_axis(sweep, tmp_path / "f" / "steps.png")
    assert {p.name for p in draw_sweep_figures(sweep, tmp_path / "all")} >= {
        "phase_diagram.png",
        "heatmap_generalization_step.png",
        "heatmap_test_acc.png",
        "generalization_vs_axis.png",
    }
    monkeypatch.setattr(sys, "argv", ["grokscope", "report", str(tmp_path / "s")])
    try:
        main()
    except SystemExit as exit_:
        assert exit_.code in (0, None)
    assert "report.html" in capsys.readouterr().out
    assert (tmp_path / "s" / "report" / "phase_diagram.png").is_file()
    assert "data:image/png;base64" in (tmp_path / "s" / "report.html").read_text()
