import json
import shutil

import numpy as np
import pytest
import yaml

from alphaline.flows.drift_check import drift_check
from alphaline.models.drift import drift_table, psi, reference_bins
from alphaline.models.registry import CHALLENGER, Registry
from alphaline.project import Project


def test_psi_is_small_for_the_same_distribution_and_large_for_a_shift():
    rng = np.random.default_rng(0)
    ref = reference_bins(rng.normal(0, 1, 20_000), 10)
    assert psi(ref, rng.normal(0, 1, 5_000)) < 0.02
    assert psi(ref, rng.normal(1.0, 1, 5_000)) > 0.25
    assert psi(ref, rng.normal(0, 2.5, 5_000)) > 0.25
    import pandas as pd
    table = drift_table({"a": ref, "b": ref}, pd.DataFrame({
        "a": rng.normal(0, 1, 1000), "b": rng.normal(2, 1, 1000), "c": rng.normal(0, 1, 1000)}))
    assert list(table["name"]) == ["b", "a"]


def test_reference_needs_values():
    with pytest.raises(ValueError, match="no finite values"):
        reference_bins([np.nan, np.inf], 10)


def test_drift_check_measures_against_the_champion_reference(trained_project, tmp_path):
    project = Project.load(shutil.copytree(trained_project.root, tmp_path / "p"))
    out = drift_check(root=str(project.root), start_retrain=False)
    written = json.loads((project.metrics_dir / "drift.json").read_text())
    assert written["champion"] == out["champion"]
    assert 0 <= out["max_feature_psi"] < 5
    assert out["features"] and {"name", "psi"} <= set(out["features"][0])
    assert "retrain" not in out


def test_drift_over_the_threshold_starts_retrain(trained_project, tmp_path):
    project = Project.load(shutil.copytree(trained_project.root, tmp_path / "p"))
    raw = yaml.safe_load((project.root / "params.yaml").read_text())
    raw["drift"]["psi_threshold"] = 0.001  # any sampling noise counts as drift
    (project.root / "params.yaml").write_text(yaml.safe_dump(raw))
    before = Registry.for_project(project).alias_version(project.params.model.name, CHALLENGER)
    out = drift_check(root=str(project.root), as_of=project.params.data.end)
    assert out["drifted"]
    assert int(out["retrain"]["version"]) == int(before) + 1
