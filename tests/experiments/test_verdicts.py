"""The README's table of verdicts: full verdicts only, numbers shown, thumbnails scaled."""

from __future__ import annotations

import json

import matplotlib.pyplot as plt
from PIL import Image

from grokscope.experiments.verdicts import verdict_table


def _entry(folder, name, smoke):
    folder.mkdir(parents=True)
    record = {
        "name": name,
        "paper": "Paper",
        "figure": "fig. 1",
        "claim": "a | b",
        "rule": "x < y",
        "numbers": {"x": 1.0, "y": float("inf")},
        "verdict": "holds",
        "smoke": smoke,
        "wall_seconds": 90.0,
    }
    (folder / "verdict.json").write_text(json.dumps(record))
    figure = plt.figure(figsize=(8, 4), dpi=100)
    figure.savefig(folder / "figure.png")
    plt.close(figure)


def test_minutes_come_from_the_catalogue_entry():
    from grokscope.experiments.catalog import load_reproduction
    from grokscope.experiments.verdicts import _minutes

    expected = load_reproduction("demo_weight_decay").expected_minutes
    assert _minutes({"name": "demo_weight_decay", "wall_seconds": 1.0}) == f"{expected:g}"


def test_table_lists_full_verdicts_with_numbers_and_scaled_thumbnails(tmp_path):
    _entry(tmp_path / "runs" / "full", "full_entry", smoke=False)
    _entry(tmp_path / "runs" / "small", "smoke_entry", smoke=True)
    table = verdict_table(tmp_path / "runs", tmp_path / "docs", link_base=tmp_path)
    lines = table.strip().splitlines()
    assert len(lines) == 3 and "smoke_entry" not in table
    assert "`x < y`: x = 1, y = -" in lines[2] and "**holds**" in lines[2] and "| 1.5 |" in lines[2]
    assert "a \\| b" in lines[2] and "![full_entry](docs/full_entry.png)" in lines[2]
    with Image.open(tmp_path / "docs" / "full_entry.png") as image:
        assert image.size == (480, 240)
