"""A user's own vendor files, end to end through ingest → validate → features."""

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from alphaline.errors import ConfigError
from alphaline.pipelines import featurize, ingest
from alphaline.pipelines.synthetic import generate_market
from tests.conftest import make_project

START, END = "2022-01-03", "2023-06-30"


def vendor_files(folder: Path, n: int = 6, seed: int = 3, close_only: bool = False) -> dict:
    """One file per symbol as vendors write them: Title-case headers, integer volumes, and
    the life of real names: a zero-volume day, a halt, a late listing, a delisting."""
    folder.mkdir(parents=True, exist_ok=True)
    bars, _ = generate_market(n, START, END, seed=seed)
    bars["volume"] = bars["volume"].round().astype("int64")
    days = sorted(bars["date"].unique())
    life = {
        "SYN001": lambda f: f.assign(volume=f["volume"].where(f.index != f.index[100], 0)),
        "SYN002": lambda f: f[~f["date"].isin(days[200:205])],          # halted a week
        "SYN003": lambda f: f[f["date"] >= days[150]],                   # listed late
        "SYN004": lambda f: f[f["date"] <= days[300]],                   # delisted
    }
    for sym, frame in bars.groupby("symbol"):
        frame = life.get(sym, lambda f: f)(frame.reset_index(drop=True))
        frame = frame.drop(columns="symbol").assign(date=frame["date"].dt.strftime("%Y-%m-%d"))
        if close_only:
            frame = frame[["date", "close"]].assign(volume=1_000_000)
        frame = frame.rename(columns=str.title)
        suffix = ".CSV" if sym == "SYN000" else ".csv"
        frame.to_csv(folder / f"{sym}{suffix}", index=False)
    return {"bars": bars, "days": days}


def files_project(tmp_path, **overrides):
    external = tmp_path / "external"
    made = vendor_files(external, close_only=overrides.pop("close_only", False))
    project = make_project(tmp_path / "p", data__source="files",
                           data__files__path=str(external), **overrides)
    return project, external, made


def test_vendor_files_pass_whole(tmp_path):
    project, _, _ = files_project(tmp_path)
    ingest.ingest_history(project)
    report = ingest.validate_history(project)
    assert report.success and not report.quarantined, report.summary()
    validated = pd.read_parquet(project.validated_bars)
    assert sorted(validated["symbol"].unique()) == [f"SYN00{i}" for i in range(6)]
    assert validated["volume"].dtype == "float64"
    assert (validated["volume"] == 0).sum() == 1


def test_an_empty_file_is_a_named_failure_of_its_symbol(tmp_path):
    project, external, _ = files_project(tmp_path)
    (external / "SYN005.csv").write_text("Date,Open,High,Low,Close,Volume\n")
    ingest.ingest_history(project)
    report = ingest.validate_history(project)
    assert list(report.quarantined) == ["SYN005"]
    assert "SYN005.csv" in report.quarantined["SYN005"][0]
    assert "no rows" in report.quarantined["SYN005"][0]
    validated = pd.read_parquet(project.validated_bars)
    assert "SYN005" not in set(validated["symbol"]) and validated["symbol"].nunique() == 5


def test_close_only_data_is_refused_at_start_when_core_needs_more(tmp_path):
    project, _, _ = files_project(tmp_path, close_only=True)
    with pytest.raises(ConfigError) as err:
        ingest.ingest_history(project)
    msg = str(err.value)
    for column, feature in [("high", "atr_14"), ("low", "close_to_low_20"), ("open", "gap")]:
        assert f"{column}: needed by" in msg and feature in msg
    assert "volume: needed by" not in msg  # the padded volume column is there
    assert not project.raw_bars.exists()


def test_close_only_data_feeds_the_sets_that_need_only_closes(tmp_path):
    project, _, _ = files_project(tmp_path, close_only=True, features__sets=["risk"])
    ingest.ingest_history(project)
    assert ingest.validate_history(project).success
    tables = featurize.build(ingest.load_validated(project), project.params.features)
    assert {"garch_vol", "beta_60"} <= set(tables.features.columns)
    assert tables.features["var_95_60"].notna().sum() > 100


def test_the_daily_batch_names_a_universe_symbol_without_todays_bar(tmp_path):
    project, external, _ = files_project(tmp_path)
    ingest.ingest_history(project)
    ingest.validate_history(project)
    validated_before = project.validated_bars.read_bytes()
    # The vendor's next file drops SYN002 today (a halt): named, held back, the rest stored.
    bars, _ = generate_market(6, START, "2023-07-14", seed=3)
    day = dt.date(2023, 7, 14)
    for sym, frame in bars.groupby("symbol"):
        if sym in ("SYN003", "SYN004"):
            continue  # their lives are told by the history files
        if sym == "SYN002":
            frame = frame[frame["date"] < pd.Timestamp(day)]
        frame = frame.drop(columns="symbol").assign(date=frame["date"].dt.strftime("%Y-%m-%d"))
        frame.to_csv(external / f"{sym}{'.CSV' if sym == 'SYN000' else '.csv'}", index=False)
    (external / "SYN003.csv").unlink()
    (external / "SYN004.csv").unlink()
    stored = ingest.store_batch(project, ingest.fetch_window(project, day), day)
    assert "SYN002" in stored.quarantined and "no bar on 2023-07-14" in \
        stored.quarantined["SYN002"][0]
    assert "SYN003" in stored.quarantined  # listed late, then missing: named too
    assert "SYN004" not in stored.quarantined  # delisted long ago: out of the universe
    live = pd.read_parquet(project.live_bars)
    today = live[live["date"] == pd.Timestamp(day)]
    assert sorted(today["symbol"]) == ["SYN000", "SYN001", "SYN005"]
    assert project.validated_bars.read_bytes() == validated_before


def test_training_goes_on_with_a_dead_feature(tmp_path):
    """Constant volume (as close-only files are padded) kills the volume features: they are
    named in the feature report and left out of the drift reference; training finishes."""
    from alphaline.models.registry import Registry
    from alphaline.pipelines.train import run_train

    external = tmp_path / "external"
    vendor_files(external)
    for f in external.iterdir():
        frame = pd.read_csv(f)
        frame.assign(Volume=1_000_000).to_csv(f, index=False)
    project = make_project(tmp_path / "p", data__source="files", data__files__path=str(external),
                           tuning__n_trials=1, model__objectives=["regression"],
                           model__n_estimators=20, cv__n_splits=2)
    ingest.ingest_history(project)
    ingest.validate_history(project)
    featurize.write(project, featurize.build(ingest.load_validated(project),
                                             project.params.features))
    out = run_train(project)
    report = (project.reports_dir / "feature_validation.md").read_text()
    dead_line = next(line for line in report.splitlines() if line.startswith("- dead"))
    assert "volume_z_20" in dead_line and "ret1_x_volume_z" in dead_line
    reference = Registry.for_project(project).run_artifact(project.params.model.name,
                                                           out.version, "reference.json")
    assert "volume_z_20" not in reference["features"] and "ret_5" in reference["features"]
