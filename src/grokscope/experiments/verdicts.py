"""The table of reproduction verdicts: one row per ``verdict.json`` under a folder, with a
thumbnail of each entry's main figure, as markdown for the README."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from grokscope.errors import GrokscopeError


def _number(value: Any) -> str:
    if isinstance(value, float):
        return "-" if math.isinf(value) or math.isnan(value) else f"{value:.3g}"
    return str(value)


def _minutes(record: dict[str, Any]) -> str:
    """The catalogue's measured full-run time: a verdict's own wall time only counts the runs
    it had to train (finished runs are reused)."""
    from grokscope.experiments.catalog import load_reproduction

    try:
        return f"{load_reproduction(record['name']).expected_minutes:g}"
    except GrokscopeError:  # an entry no longer in the catalogue
        return f"{record['wall_seconds'] / 60:.1f}"


def thumbnail(figure: Path, target: Path, width: int = 480) -> Path:
    """A PNG copy of ``figure`` scaled to ``width`` pixels (aspect kept)."""
    from PIL import Image  # pillow comes with matplotlib

    target.parent.mkdir(parents=True, exist_ok=True)
    with Image.open(figure) as image:
        height = max(1, round(image.height * width / image.width))
        image.convert("RGB").resize((width, height), Image.LANCZOS).save(target, optimize=True)
    return target


def verdict_table(folder: str | Path, thumbnails: str | Path | None = None, link_base: Path | None = None) -> str:
    """Markdown table of the full (non-smoke) verdicts under ``folder``; with ``thumbnails``,
    each main figure is scaled into that folder and shown in the table (paths relative to
    ``link_base``, the folder the markdown lives in)."""
    rows = [
        "| entry | paper, figure | claim | rule and numbers | verdict | minutes on 2 CPUs | figure |",
        "|---|---|---|---|---|---|---|",
    ]
    for path in sorted(Path(folder).glob("*/verdict.json")):
        record = json.loads(path.read_text())
        if record.get("smoke"):
            continue
        numbers = ", ".join(f"{key} = {_number(value)}" for key, value in record["numbers"].items())
        image = ""
        figure = path.parent / "figure.png"
        if thumbnails is not None and figure.is_file():
            small = thumbnail(figure, Path(thumbnails) / f"{record['name']}.png")
            shown = os.path.relpath(small, link_base) if link_base is not None else str(small)
            image = f"![{record['name']}]({Path(shown).as_posix()})"
        cells = [
            f"`{record['name']}`",
            f"{record['paper']}, {record['figure']}",
            record["claim"],
            f"`{record['rule']}`: {numbers}",
            f"**{record['verdict']}**",
            _minutes(record),
            image,
        ]
        rows.append("| " + " | ".join(cell.replace("|", "\\|").replace("\n", " ") for cell in cells) + " |")
    return "\n".join(rows) + "\n"
