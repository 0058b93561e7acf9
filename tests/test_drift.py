import json
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml

from alphaline.flows.drift_check import drift_check
from alphaline.models.drift import (
    benjamini_hochberg,
    controlled_drift,
    cross_sectional_drift,
    drift_table,
    is_dead,
    ks_binned,
    psi,
    reference_bins,
)
from alphaline.models.registry import CHALLENGER, CHAMPION, Registry
from alphaline.pipelines.synthetic import generate_market
from alphaline.project import Project
from tests.conftest import open_ledger


def test_psi_is_small_for_the_same_distribution_and_large_for_a_shift():
    rng = np.random.default_rng(0)
    ref = reference_bins(rng.normal(0, 1, 20_000), 10)
    assert psi(ref, rng.normal(0, 1, 5_000)) < 0.02
    assert psi(ref, rng.normal(1.0, 1, 5_000)) > 0.25
    assert psi(ref, rng.normal(0, 2.5, 5_000)) > 0.25
    table = drift_table({"a": ref, "b": ref}, pd.DataFrame({
        "a": rng.normal(0, 1, 1000), "b": rng.normal(2, 1, 1000), "c": rng.normal(0, 1, 1000)}))
    assert list(table["name"]) == ["b", "a"]


def test_ks_on_the_reference_bins_tells_a_shift_from_noise():
    rng = np.random.default_rng(1)
    ref = reference_bins(rng.normal(0, 1, 20_000), 10)
    d, p = ks_binned(ref, rng.normal(0, 1, 2_000))
    assert d < 0.05 and p > 0.01
    d, p = ks_binned(ref, rng.normal(0.5, 1, 2_000))
    assert d > 0.15 and p < 1e-6
    # the same distance on fewer independent draws is weaker evidence
    assert ks_binned(ref, rng.normal(0.5, 1, 2_000), effective_n=30)[1] > p


def test_a_feature_that_turns_missing_or_constant_is_dead_and_drifted():
    rng = np.random.default_rng(2)
    ref = reference_bins(rng.normal(0, 1, 5_000), 10)
    assert is_dead(ref, [np.nan] * 50) and is_dead(ref, [0.3] * 50)
    assert not is_dead(ref, rng.normal(0, 1, 50))
    assert not is_dead(reference_bins(np.ones(100), 10), np.ones(50))  # constant in training
    recent = pd.DataFrame({"nan": np.nan, "flat": 0.3, "ok": rng.normal(0, 1, 200)},
                          index=range(200))
    table = drift_table({c: ref for c in recent}, recent, effective_n=20, psi_threshold=0.25,
                        fdr=0.05)
    assert set(table["name"].tolist()[:2]) == {"flat", "nan"}  # dead first
    assert table.set_index("name")["drifted"].to_dict() == {"nan": True, "flat": True,
                                                             "ok": False}
    assert np.isnan(table.set_index("name").loc["nan", "psi"])  # NaN > threshold never fires
    reasons = controlled_drift(table, None, 0.25, 0.05, 0.5)
    assert len(reasons) == 1 and "dead" in reasons[0] and "nan" in reasons[0]


def test_benjamini_hochberg():
    p = np.array([0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205, np.nan])
    # the textbook example: at 5 % only the two smallest survive
    assert benjamini_hochberg(p, 0.05).tolist() == [True, True] + [False] * 7
    assert not benjamini_hochberg(np.array([np.nan]), 0.05).any()


def test_many_features_of_noise_raise_no_drift_where_psi_alone_would():
    """With 200 features and few draws each, PSI > 0.25 happens by chance on an ordinary
    day; KS under Benjamini–Hochberg and the share rule keep it quiet, and a real shift of
    many features still passes."""
    rng = np.random.default_rng(3)
    reference = {f"f{i}": reference_bins(rng.normal(0, 1, 5_000), 10) for i in range(200)}
    recent = pd.DataFrame(rng.normal(0, 1, (30, 200)), columns=list(reference))
    table = drift_table(reference, recent, psi_threshold=0.25, fdr=0.05)
    assert (table["psi"] > 0.25).sum() >= 5  # the old single-feature rule would fire
    assert not table["drifted"].any()
    assert controlled_drift(table, None, 0.25, 0.05, 0.2) == []
    shifted = recent.copy()
    shifted.iloc[:, :80] += 1.5
    table = drift_table(reference, shifted, psi_threshold=0.25, fdr=0.05)
    assert table["drifted"].sum() >= 60
    reasons = controlled_drift(table, None, 0.25, 0.05, 0.2)
    assert len(reasons) == 1 and reasons[0].startswith("drift in")
    score = {"psi": 0.9, "ks": 0.4, "p_value": 1e-5, "dead": False}
    assert controlled_drift(table.iloc[:0], score, 0.25, 0.05, 0.2)[0].startswith("score")


def _panel(days: int = 200, names: int = 40, seed: int = 4) -> pd.DataFrame:
    """Two features with a market component that wanders (regimes) and a per-name part."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2022-01-03", periods=days)
    market = np.cumsum(rng.normal(0, 0.3, days))  # a trending market level
    rows = {"symbol": np.tile([f"S{i}" for i in range(names)], days),
            "date": np.repeat(dates, names)}
    for f in ("trend", "vol"):
        rows[f] = np.repeat(market, names) + rng.normal(0, 1, days * names)
    return pd.DataFrame(rows)


def test_cross_sectional_drift_ignores_the_market_and_sees_the_cross_section():
    panel = _panel()
    dates = sorted(panel["date"].unique())
    reference = {f: reference_bins(panel.loc[panel["date"] < dates[100], f], 10)
                 for f in ("trend", "vol")}
    window = dates[-20:]
    panel.loc[panel["date"].isin(window), ["trend", "vol"]] += 6.0  # a market-wide rally
    table = cross_sectional_drift(reference, panel, window, 10, 0.25, 0.05).set_index("name")
    assert (table["psi_training"] > 0.25).all()  # the old rule would retrain on a rally
    assert not table["drifted"].any()
    # half the names' feature breaks (a vendor change for one exchange): the shape moves
    broken = panel["date"].isin(window) & panel["symbol"].isin([f"S{i}" for i in range(20)])
    panel.loc[broken, "trend"] *= 4.0
    table = cross_sectional_drift(reference, panel, window, 10, 0.25, 0.05).set_index("name")
    assert table.loc["trend", "drifted"] and not table.loc["vol", "drifted"]
    assert table.loc["trend", "p_value"] < 0.01
    panel.loc[panel["date"].isin(window), "vol"] = np.nan  # the vendor stopped sending it
    table = cross_sectional_drift(reference, panel, window, 10, 0.25, 0.05).set_index("name")
    assert table.loc["vol", "dead"] and table.loc["vol", "drifted"]


def test_reference_needs_values():
    with pytest.raises(ValueError, match="no finite values"):
        reference_bins([np.nan, np.inf], 10)


def _copy(trained_project, tmp_path, **drift) -> Project:
    """A copy of the trained project with ``drift:`` params overridden."""
    project = Project.load(shutil.copytree(trained_project.root, tmp_path / "p"))
    raw = yaml.safe_load((project.root / "params.yaml").read_text())
    raw["drift"].update(drift)
    (project.root / "params.yaml").write_text(yaml.safe_dump(raw))
    return Project.load(project.root)


def test_drift_check_measures_against_the_champion_reference(trained_project, tmp_path):
    project = _copy(trained_project, tmp_path)
    out = drift_check(root=str(project.root), as_of=project.params.data.end,
                      start_retrain=False)
    written = json.loads((project.metrics_dir / "drift.json").read_text())
    assert written["champion"] == out["champion"]
    assert 0 <= out["max_feature_psi"] < 5
    assert out["features"] and {"name", "psi", "ks", "p_value", "dead", "drifted"} <= set(
        out["features"][0])
    # the planted market is one regime: nothing passes the controls, nothing is dead
    assert out["drift_reasons"] == [] and out["dead"] == []
    assert out["live"]["sessions"] == 0 and not out["decay"]["alarm"]  # no live signals yet
    assert out["backtest"]["rank_ic"] > 0
    health = out["health"]
    assert health["universe"] == project.params.data.synthetic.n_symbols
    assert health["bars_missing"] == 0 and health["quarantined_share"] == 0
    assert health["staleness_by_store"]["validated"] == 0
    assert health["staleness_by_store"]["live"] is None  # no daily run yet
    report = project.reports_dir / "drift" / f"{project.params.data.end}.md"
    assert "## Data health" in report.read_text()
    assert "retrain" not in out


def test_a_dead_feature_starts_retrain_with_the_reason_on_the_new_version(trained_project,
                                                                       tmp_path):
    project = _copy(trained_project, tmp_path, cooldown_sessions=0)
    table = pd.read_parquet(project.feature_table)
    last = sorted(table["date"].unique())[-project.params.drift.lookback_days:]
    registry = Registry.for_project(project)
    name = registry.recipe(project.params.model.name, registry.alias_version(
        project.params.model.name, CHAMPION))["features"][0]
    table.loc[table["date"].isin(last), name] = np.nan  # the vendor stopped sending it
    table.to_parquet(project.feature_table)
    before = registry.alias_version(project.params.model.name, CHALLENGER)
    out = drift_check(root=str(project.root), as_of=project.params.data.end)
    assert out["dead"] == [name] and name in out["drifted"]
    assert out["drift_reasons"][0].startswith("dead features")
    version = out["retrain"]["version"]
    assert int(version) == int(before) + 1
    tags = registry.version_tags(project.params.model.name, version)
    assert name in tags["retrain.reason"] and "dead" in tags["retrain.reason"]
    assert tags["retrain.as_of"] == str(project.params.data.end)


def test_decay_alerts_and_waits_out_the_cooldown(trained_project, tmp_path, monkeypatch):
    """The champion's live signals stop earning (here: the planted signal turned around);
    the CUSUM fires, an alert reaches the webhook, and the retrain waits: the champion was
    trained on the same day (cooldown)."""
    from tests.test_alerts import Receiver

    project = _copy(trained_project, tmp_path)
    p = project.params
    registry = Registry.for_project(project)
    version = registry.alias_version(p.model.name, CHAMPION)
    syn = p.data.synthetic
    _, planted = generate_market(syn.n_symbols, p.data.start, p.data.end, syn.seed,
                                 syn.alpha_strength, syn.mode, p.data.calendar)
    days = sorted(planted["date"].unique())[-90:]
    ledger = open_ledger(project.ledger_url)
    for day in days:
        today = planted[planted["date"] == day]
        ledger.record_signals(pd.Timestamp(day).date(), pd.DataFrame(
            {"symbol": today["symbol"], "score": -today["signal"]}), p.model.name, version)
    with Receiver() as r:
        monkeypatch.setenv("ALPHALINE_ALERT_WEBHOOK", r.url)
        out = drift_check(root=str(project.root), as_of=p.data.end)
    assert out["live"]["sessions"] == 88  # the last two days' labels have not realized
    assert out["live"]["rank_ic"] < -0.05 and out["live"]["hit_rate"] < 0.5
    assert out["decay"]["alarm"] and out["decay"]["expected"] > 0
    assert out["retrain_due"] and "cooldown" in out["retrain_suppressed"]
    assert "retrain" not in out
    kinds = [m["subject"].split("]")[0] for m in r.received]
    assert "[alphaline decay" in kinds
    assert out["decay"]["reason"] in r.received[kinds.index("[alphaline decay")]["body"]
