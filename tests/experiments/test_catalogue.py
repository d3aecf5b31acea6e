"""Every reproduction in the catalogue is complete and its smoke version runs to a verdict.

Families with their own smoke tests (which also check the numbers their analysis returns) are
listed in COVERED_ELSEWHERE; every other entry is run here, so a new entry is smoke-tested in
CI without anyone having to remember it.
"""

from __future__ import annotations

import json

import pytest

from grokscope.experiments.catalog import list_reproductions, reproduce

COVERED_ELSEWHERE = {
    "zhao_tanh_vs_linear": "tests/experiments/test_zhao_entries.py",
    "zhao_rpd_over_training": "tests/experiments/test_zhao_entries.py",
    "zhao_batchnorm_grokking": "tests/experiments/test_zhao_entries.py",
    "zhao_shallow_grokking": "tests/experiments/test_zhao_entries.py",
    "zhao_pruning_depth": "tests/experiments/test_zhao_entries.py",
    "oinfo_weight_decay": "tests/experiments/test_oinfo_entries.py",
    "oinfo_subnetwork": "tests/experiments/test_oinfo_entries.py",
    "layerwise_sigmoidal_vs_exponential": "tests/experiments/test_layerwise_entries.py",
    "layerwise_stage_like": "tests/experiments/test_layerwise_entries.py",
    "layerwise_lazy_rich": "tests/experiments/test_layerwise_entries.py",
    "layerwise_grokking_control": "tests/experiments/test_layerwise_entries.py",
    "liu_class_effective": "tests/experiments/test_layerwise_entries.py",
    "layerwise_emergence": "tests/experiments/test_layerwise_entries.py",
}
ENTRIES = {entry.name: entry for entry in list_reproductions()}


def test_every_entry_states_paper_figure_claim_rule_and_expected_time():
    assert set(COVERED_ELSEWHERE) <= set(ENTRIES)
    for entry in ENTRIES.values():
        assert entry.paper and entry.figure and entry.claim and entry.rule, entry.name
        assert 0 < entry.expected_minutes <= 60, entry.name


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(set(ENTRIES) - set(COVERED_ELSEWHERE)))
def test_smoke_version_runs_to_a_verdict(name, tmp_path):
    verdict = reproduce(name, out=tmp_path, smoke=True, progress=False)
    record = json.loads((tmp_path / "verdict.json").read_text())
    assert record["name"] == name and record["smoke"] and verdict.smoke
    assert record["verdict"] in ("holds", "does not hold")
    assert record["numbers"], "the rule read no numbers"
    assert all(isinstance(value, (int, float)) or value is None for value in record["numbers"].values())
    assert (tmp_path / "figure.png").is_file() and (tmp_path / "verdict.md").is_file()
