"""The HTML report: one self-contained file with the summary, the aligned timeline and the probe
figures of a run; the table of cells of a sweep or a folder of runs, linking to their reports."""

from __future__ import annotations

import base64
import io
from html.parser import HTMLParser
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest

import grokscope
from grokscope.config import parse_config
from grokscope.report.html import (
    CheckpointView,
    key_checkpoints,
    lead_rows,
    measure_groups,
    nearest_steps,
    run_report,
    timeline_figure,
    write_report,
)
from tests.analysis.test_leadtime import constructed_metrics, sigmoid, write_run
from tests.conftest import tiny_config_data

PROBES = [
    {"name": "loss_accuracy"},
    {"name": "weight_norm"},
    {"name": "rpd", "cadence": "every", "max_samples": 40},
]


def tiny_run(folder: Path, probes: list | None = None, **overrides) -> grokscope.Run:
    data = tiny_config_data(probes=probes or PROBES, training={"steps": 150}, **overrides)
    return grokscope.run(parse_config(data), out=folder, progress=False)


class Page(HTMLParser):
    """Tags, attributes and text of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def parse(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text())
    return page


def assert_self_contained(page: Page) -> list[np.ndarray]:
    """No scripts, stylesheets or outside sources; every image an embedded PNG that decodes."""
    images = []
    for tag, attrs in page.tags:
        assert tag not in ("script", "link", "iframe", "object", "embed"), tag
        for key in ("src", "href"):
            value = attrs.get(key)
            if value is None:
                continue
            if tag == "a":
                assert "://" not in value and not value.startswith("/"), value  # relative links only
            else:
                assert value.startswith("data:image/png;base64,"), value[:60]
        if tag == "img":
            data = base64.b64decode(attrs["src"].split(",", 1)[1])
            images.append(matplotlib.image.imread(io.BytesIO(data), format="png"))
    csp = [a for t, a in page.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"]
    assert csp and "default-src 'none'" in csp[0]["content"]
    return images


@pytest.fixture(scope="module")
def probed_run(tmp_path_factory) -> grokscope.Run:
    return tiny_run(tmp_path_factory.mktemp("html") / "run")


def test_run_report_is_self_contained_with_summary_timeline_and_probe_figures(probed_run):
    path = run_report(probed_run)
    assert path == probed_run.path / "report.html"
    page = parse(path)
    images = assert_self_contained(page)
    text = " ".join(page.text)
    summary = probed_run.summary
    assert f"{probed_run.path.name}: {summary['phase']} ({summary['status']})" in text
    assert "fit step" in text and str(summary["fit_step"]) in text
    assert "name: tiny" in text  # the config
    alts = [a.get("alt") for t, a in page.tags if t == "img"]
    assert alts[0] == "timeline"
    assert {"rpd_gradient", "rpd_curves"} <= set(alts)  # registered figures of the rpd probe
    assert "curves" not in alts  # the timeline shows accuracy and loss
    assert all(image.shape[0] > 50 and image.shape[1] > 50 for image in images)
    assert (probed_run.path / "report" / "rpd_curves.svg").is_file()  # figures kept as files too


def test_timeline_has_one_panel_per_family_on_a_shared_log_axis_with_the_events_marked(probed_run):
    metrics = probed_run.metrics
    groups = measure_groups(metrics)
    assert "norm/total" in groups and "rpd/grad/layer" in groups
    assert groups["rpd/grad/layer"] == ["rpd/grad/layer1"]
    assert groups["norm/linears."] == ["norm/linears.0", "norm/linears.1"]
    named = pd.DataFrame({"step": [1], "collapse/nc1": [1.0], "collapse/nc2": [1.0], "skills/0": [1], "skills/1": [0]})
    assert measure_groups(named) == {
        "collapse/nc1": ["collapse/nc1"],
        "collapse/nc2": ["collapse/nc2"],
        "skills/": ["skills/0", "skills/1"],
    }
    assert not any(c in groups for c in ("train/acc", "test/loss", "step"))
    summary = probed_run.summary
    figure = timeline_figure(probed_run)
    axes = figure.axes
    assert len(axes) == 2 + len(groups)  # accuracy, loss, then the families
    assert all(axis.get_xscale() == "log" for axis in axes)
    assert len({id(axis.get_shared_x_axes()) for axis in axes}) >= 1
    assert all(axis.get_xlim() == axes[0].get_xlim() for axis in axes)  # one step axis
    events = [summary[k] for k in ("fit_step", "generalization_step") if summary.get(k)]
    assert events, "the tiny run should at least fit"
    for axis in axes:
        vertical = {line.get_xdata()[0] for line in axis.lines if len(set(line.get_xdata())) == 1}
        assert set(events) <= vertical, axis.get_title()


def test_lead_table_of_a_run_over_the_whole_series_and_from_the_fit_step(tmp_path):
    """Constructed series (tests/analysis/test_leadtime.py): the weight norm jumps at the fit step
    (30) and moves again 100 steps before the test accuracy jumps (2000)."""
    metrics = constructed_metrics(2000)
    steps = metrics["step"].to_numpy()
    metrics["train/acc"] = 0.05 + 0.95 * sigmoid(steps, 30, 3)
    metrics["norm/total"] = 10 + 50 * sigmoid(steps, 30, 3) - 10 * sigmoid(steps, 1900)
    write_run(tmp_path / "run", metrics)
    onset, onset_after, rows = lead_rows(grokscope.open_run(tmp_path / "run"))
    assert abs(onset - 2000) <= 10 and abs(onset_after - 2000) <= 10
    by_measure = {row[0]: row for row in rows}
    assert set(by_measure) == {"norm/total", "control/late", "train/acc"}
    norm = by_measure["norm/total"]
    assert norm[1] < 100  # whole series: the jump at the fit step
    assert abs(int(norm[5]) - 100) <= 10  # from the fit step on: 100 steps ahead
    assert [row[0] for row in rows][-1] == "control/late"  # most ahead first
    page = run_report(tmp_path / "run").read_text()  # a folder whose config.yaml is only a name
    assert "What moves before the test accuracy" in page and "norm/total" in page


def test_key_checkpoints_and_nearest_stored_steps():
    assert key_checkpoints([0, 5, 10, 20, 50, 100], 10, 50) == {
        "before fit": 5,
        "fit": 10,
        "before generalization": 20,
        "generalization": 50,
        "end": 100,
    }
    assert key_checkpoints([0, 5, 10], None, None) == {"end": 10}
    assert key_checkpoints([0, 5, 10], 0, None) == {"fit": 0, "end": 10}
    assert nearest_steps([0, 10, 100, 1000], [1, 9, 120, 2000]) == [0, 10, 100, 1000]
    assert nearest_steps([0, 10, 100, 1000], [9, 11]) == [10]
    assert nearest_steps([], [5]) == []


def test_checkpoint_view_keeps_the_stored_arrays_nearest_the_key_steps(probed_run):
    stored = sorted(probed_run.arrays("rpd"))
    assert len(stored) > 5
    view = CheckpointView(probed_run.path, [stored[1], stored[-1]])
    assert sorted(view.arrays("rpd")) == [stored[1], stored[-1]]
    assert sorted(CheckpointView(probed_run.path, []).arrays("rpd")) == stored


def test_folder_report_links_every_run_to_its_own_report(tmp_path):
    for seed in (0, 1):
        tiny_run(tmp_path / "runs" / f"seed{seed}", probes=[{"name": "loss_accuracy"}], seed=seed)
    leads = pd.DataFrame(
        {"run": ["seed0"], "measure": ["norm/total"], "onset_step": [50.0], "change_step": [20.0]}
    ).assign(lead_steps=30.0, lead_log10=np.log10(2.5))
    leads.to_csv(tmp_path / "runs" / "leadtime.csv", index=False)
    (tmp_path / "runs" / "leadtime.md").write_text("table")
    (tmp_path / "runs" / "verdict.md").write_text("claim holds <3")
    path = write_report(tmp_path / "runs")
    page = parse(path)
    assert_self_contained(page)
    links = [a["href"] for t, a in page.tags if t == "a"]
    assert links == ["seed0/report.html", "seed1/report.html"]
    for link in links:
        assert (path.parent / link).is_file()
    assert "Lead time of the measures" in " ".join(page.text)
    assert "+30" in " ".join(page.text)
    assert "claim holds <3" in " ".join(page.text)  # escaped, read back as text


def test_sweep_report_has_the_phase_diagram_and_links_to_cells(tmp_path):
    sweep = pytest.importorskip("grokscope.sweep")
    spec = {
        "name": "tiny_sweep",
        "base": tiny_config_data(training={"steps": 40}, probes=[{"name": "loss_accuracy"}]),
        "axes": {"optimizer.weight_decay": [0.1, 1.0]},
    }
    sweep.run_sweep(spec, tmp_path / "sweep")
    path = write_report(tmp_path / "sweep")
    page = parse(path)
    assert_self_contained(page)
    alts = [a.get("alt") for t, a in page.tags if t == "img"]
    assert "phase_diagram" in alts
    links = [a["href"] for t, a in page.tags if t == "a"]
    assert len(links) == 2 and all(link.startswith("cells/") for link in links)
    for link in links:
        assert (path.parent / link).is_file()


def test_cli_report_writes_the_html_and_a_missing_folder_exits_2(tmp_path, cli):

    tiny_run(tmp_path / "run", probes=[{"name": "loss_accuracy"}])

    code, out, _ = cli("report", str(tmp_path / "run"))
    assert code == 0
    assert (tmp_path / "run" / "report.html").is_file()
    assert "report.html" in out
    code, _, err = cli("report", str(tmp_path / "missing"))
    assert code == 2
    assert err.count("\n") == 1 and "missing" in err
