"""Every reproduction in the catalogue is complete and its smoke version runs to a verdict.

Every entry is run here (so a new entry is smoke-tested in CI without anyone having to remember
it), and must return at least the analysis numbers listed in ANALYSIS_NUMBERS; entries with
smoke tests of their own, which check more, are listed in COVERED_ELSEWHERE.
"""

from __future__ import annotations

import json

import pytest

from grokscope.experiments.catalog import list_reproductions, reproduce

COVERED_ELSEWHERE = {
    "oinfo_weight_decay": "tests/experiments/test_oinfo_entries.py",
    "oinfo_subnetwork": "tests/experiments/test_oinfo_entries.py",
}
ANALYSIS_NUMBERS = {
    "zhao_tanh_vs_linear": ["gap_small", "gap_large", "rpd_linear_large", "rpd_tanh_large"],
    "zhao_rpd_over_training": ["rise", "fall", "peak_step", "final_step"],
    "zhao_batchnorm_grokking": ["eval_delay", "batch_delay", "fit_step"],
    "zhao_shallow_grokking": ["sample_growth", "weight_growth", "peak_ratio_layer1", "fall_layer2"],
    "zhao_pruning_depth": ["lp_first", "lmap_first", "network_test_acc"],
    "layerwise_sigmoidal_vs_exponential": ["linear_deviation", "diagonal_deviation", "linear_rise", "diagonal_rise"],
    "layerwise_stage_like": ["diagonal_overlaps", "diagonal_in_order", "linear_overlaps", "diagonal_deviation"],
    "layerwise_lazy_rich": ["map_rich_distance", "funnel_delay", "antifunnel_delay", "rich_flow_distance"],
    "layerwise_grokking_control": [],
    "liu_class_effective": ["theory_within_end", "theory_z_drift", "default_structure_step"],
    "layerwise_emergence": ["mlp_order", "layerwise_order", "mlp_skills", "layerwise_theory_deviation"],
}
ENTRIES = {entry.name: entry for entry in list_reproductions()}


def test_every_entry_states_paper_figure_claim_rule_and_expected_time():
    assert set(COVERED_ELSEWHERE) <= set(ENTRIES) and set(ANALYSIS_NUMBERS) <= set(ENTRIES)
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
    assert set(ANALYSIS_NUMBERS.get(name, [])) <= set(record["analysis_numbers"])
