"""Backtest: what the daily flow would have done, day by day, with costs.

:func:`run_backtest` is the edge behind ``alphaline backtest``: it reads the validated bars,
computes the features point-in-time, chooses the model of each day (the champion, or a
monthly walk-forward refit of its recipe on the labels known by that day), replays the
daily ledger day into a scratch ledger under ``reports/backtest/<run>/``, and writes the
HTML report there (logged to MLflow as an artifact of a ``backtest`` run).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from alphaline.calendar import sessions, sessions_per_year
from alphaline.errors import ConfigError, MissingPrerequisite
from alphaline.models.ensemble import TreeEnsemble
from alphaline.models.recipes import estimator_from, recipe_inputs, tree_recipe
from alphaline.models.registry import CHAMPION, Registry
from alphaline.models.signal import SignalModel
from alphaline.models.tft import TFTForecaster
from alphaline.pipelines import featurize
from alphaline.pipelines.catalog import Catalog
from alphaline.pipelines.train import weights_for
from alphaline.project import Project
from alphaline.trading.backtest.assemble import from_ledger
from alphaline.trading.backtest.replay import ReplayRun, TradingModel, replay_sessions
from alphaline.trading.backtest.result import BacktestResult
from alphaline.trading.backtest.vectorized import market_grids
from alphaline.trading.costs import market_panel

log = logging.getLogger(__name__)

RETRAIN = ("none", "monthly")


@dataclass
class BacktestOutcome:
    result: BacktestResult
    report: Path
    directory: Path
    mlflow_run_id: str | None


def backtest_sessions(calendar: str, bars: pd.DataFrame, start: dt.date, end: dt.date
                      ) -> list[dt.date]:
    """The exchange sessions of ``[start, end]`` that the bars cover."""
    have = set(pd.to_datetime(bars["date"]).dt.normalize())
    days = [d.date() for d in sessions(calendar, start, end) if d in have]
    if not days:
        raise MissingPrerequisite(f"no validated bars between {start} and {end}: run "
                                  "`alphaline validate` (or `dvc repro`) over that range")
    return days


def champion_model(project: Project) -> tuple[TradingModel, dict]:
    """The registry's champion, the last day its training saw, and its recipe."""
    p = project.params
    registry = Registry.for_project(project)
    signal, version, _ = registry.load_alias(p.model.name, CHAMPION)
    mv = registry.client.get_model_version(p.model.name, version)
    run = registry.client.get_run(mv.run_id)
    end = run.data.params.get("train_end")
    trained = dt.date.fromisoformat(end) if end else None
    return TradingModel(signal, f"v{version}", trained), registry.recipe(p.model.name, version)


def labels_known_by(labels: pd.DataFrame, dates: np.ndarray, day: dt.date, horizon: int
                    ) -> pd.DataFrame:
    """Rows whose label had realized by ``day``'s close: ``close[t+1+h]`` is at or before
    ``day``, i.e. ``t`` is at least ``1 + h`` sessions before it."""
    pos = np.searchsorted(dates, np.datetime64(pd.Timestamp(day)), side="right") - 1
    last = pos - (1 + horizon)
    if last < 0:
        return labels.iloc[0:0]
    return labels[labels["date"] <= dates[last]]


class WalkForward:
    """The model of each day under monthly retraining: the recipe refitted at each month's
    first session on the labels known by then (saved under the run, so a resumed run reuses
    it)."""

    def __init__(self, recipe: dict, frame: pd.DataFrame, dates: np.ndarray, horizon: int,
                 n_jobs: int, directory: Path, min_sessions: int,
                 close: pd.DataFrame | None = None):
        self.recipe, self.frame, self.dates, self.close = recipe, frame, dates, close
        self.horizon, self.n_jobs, self.directory = horizon, n_jobs, directory
        self.min_sessions = min_sessions
        self._current: TradingModel | None = None
        self._month: tuple[int, int] | None = None

    def __call__(self, day: dt.date) -> TradingModel:
        if self._month != (day.year, day.month):
            self._current = self._fit(day)
            self._month = (day.year, day.month)
        return self._current

    def _fit(self, day: dt.date) -> TradingModel:
        version = f"wf-{day:%Y-%m}"
        path = self.directory / "models" / version
        rows = labels_known_by(self.frame, self.dates, day, self.horizon)
        through = pd.Timestamp(rows["date"].max()).date() if len(rows) else None
        if (path / "signal.json").is_file():
            return TradingModel(SignalModel.load(path, self.n_jobs), version, through)
        if rows["date"].nunique() < self.min_sessions:
            raise MissingPrerequisite(
                f"{day}: only {rows['date'].nunique()} sessions of known labels before it; "
                f"monthly retraining needs {self.min_sessions} (cv.min_train_days): start the "
                "backtest later")
        features = self.recipe["features"]
        rows = rows.sort_values(["date", "symbol"], ignore_index=True)
        from alphaline.pipelines.results import TrainingSet

        ts = TrainingSet(X=rows[features], y=rows["label"], dates=rows["date"],
                         symbols=rows["symbol"], fingerprint=version)
        log.info("%s: refitting the recipe on %d rows through %s", version, len(rows), through)
        trees = tree_recipe(self.recipe)
        model = estimator_from(self.recipe, self.n_jobs).fit(
            recipe_inputs(self.recipe, ts.X, ts.symbols, ts.dates, self.close), ts.y,
            dates=ts.dates, sample_weight=None if trees is None else weights_for(trees, ts))
        signal = signal_of(model)
        signal.save(path)
        return TradingModel(signal, version, through)


def signal_of(model) -> SignalModel:
    """The servable signal of a refitted recipe's estimator (no meta-labeler: a monthly
    refit trades the primary book)."""
    if isinstance(model, TreeEnsemble):
        return SignalModel(model)
    if isinstance(model, TFTForecaster):
        return SignalModel(None, None, model)
    return SignalModel(model.trees, None, model.tft, tuple(model.weights))


def shap_by_version(models: dict[str, SignalModel], features: pd.DataFrame,
                    versions: pd.DataFrame, sample_days: int = 20) -> dict[str, pd.DataFrame]:
    """Mean |SHAP| per feature of each version, on a sample of the days it traded."""
    out = {}
    for row in versions.itertuples():
        signal = models.get(row.version)
        if signal is None or signal.ensemble is None:  # a TFT explains itself per signal
            continue
        days = features[(features["date"] >= pd.Timestamp(row.first_day))
                        & (features["date"] <= pd.Timestamp(row.last_day))]
        keep = np.unique(days["date"])[-sample_days:]
        X = days[days["date"].isin(keep)][signal.features].astype("float64")
        if X.empty:
            continue
        names = [str(c) for c in signal.ensemble.feature_names_in_]
        phi = signal.contributions(X)
        out[row.version] = pd.DataFrame({"feature": names,
                                         "mean_abs_shap": np.abs(phi).mean(axis=0)})
    return out


def run_backtest(project: Project, start: dt.date, end: dt.date, *, retrain: str = "none",
                 name: str | None = None, progress: bool = True, log_mlflow: bool = True
                 ) -> BacktestOutcome:
    """Replay the daily flow over ``[start, end]`` and write its report."""
    if retrain not in RETRAIN:
        raise ConfigError(f"--retrain {retrain!r}: choose one of {', '.join(RETRAIN)}")
    if end < start:
        raise ConfigError(f"--end {end} is before --start {start}")
    p = project.params
    catalog = Catalog(project)
    bars = catalog.validated_bars()
    bars = bars[bars["date"] <= pd.Timestamp(end)].reset_index(drop=True)
    days = backtest_sessions(p.data.calendar, bars, start, end)
    directory = project.reports_dir / "backtest" / (name or f"{start}_{end}_{retrain}")
    directory.mkdir(parents=True, exist_ok=True)
    champion, recipe = champion_model(project)
    log.info("backtest %s → %s: %d sessions, retrain %s, into %s", days[0], days[-1],
             len(days), retrain, directory)
    tables = featurize.build(bars, p.features)
    features = tables.features
    run = ReplayRun(directory)
    models: dict[str, SignalModel] = {}
    if retrain == "none":
        if champion.trained_through is not None and champion.trained_through >= days[0]:
            log.warning("the champion %s was trained on labels through %s: the sessions "
                        "before then are in-sample (use --retrain monthly for a walk-forward)",
                        champion.version, champion.trained_through)
        models[champion.version] = champion.signal

        def model_for(day: dt.date) -> TradingModel:
            return champion
    else:
        frame = features.merge(tables.labels, on=["symbol", "date"])
        frame = frame[frame["label"].notna()]
        walk = WalkForward(recipe, frame, np.sort(bars["date"].unique()),
                           p.features.label_horizon, p.model.n_jobs, directory,
                           p.cv.min_train_days, market_grids(market_panel(bars))["close"])

        def model_for(day: dt.date) -> TradingModel:
            model = walk(day)
            models[model.version] = model.signal
            return model
    ledger = replay_sessions(bars, features, days, p, run, model_for,
                             progress=_bar if progress else None)
    market = market_grids(market_panel(bars))
    betas = (features.pivot(index="date", columns="symbol", values="beta_60")
             if "beta_60" in features else None)
    sectors = (bars.drop_duplicates("symbol", keep="last").set_index("symbol")["sector"]
               .dropna().astype(str).to_dict() if "sector" in bars else {})
    result = from_ledger(ledger, market, p, run.versions, betas=betas, sectors=sectors,
                         meta={"run_id": directory.name, "retrain": retrain,
                               "sessions_per_year": sessions_per_year(p.data.calendar),
                               "params_digest": _digest(p)})
    from alphaline.reporting.backtest import write_backtest_report

    page = write_backtest_report(
        result, directory, title=f"alphaline backtest {days[0]} → {days[-1]}",
        shap_by_version=shap_by_version(models, features, result.versions))
    (directory / "summary.json").write_text(json.dumps(_summary(result), indent=2))
    run_id = _log_run(project, directory, result, retrain) if log_mlflow else None
    return BacktestOutcome(result, page, directory, run_id)


def _summary(result: BacktestResult) -> dict:
    r = result.daily["returns"]
    nav = result.daily["nav"]
    return {"sessions": len(r), "start": str(r.index[0].date()), "end": str(r.index[-1].date()),
            "final_nav": float(nav.iloc[-1]), "total_return": float(nav.iloc[-1] / nav.iloc[0]
                                                                    * (1 + r.iloc[0]) - 1),
            "costs": {c: float(result.daily[c].sum()) for c in ("commission", "spread",
                                                                 "impact", "borrow")},
            "fills": len(result.trades), "versions": result.versions["version"].tolist()}


def _log_run(project: Project, directory: Path, result: BacktestResult, retrain: str) -> str:
    """A ``backtest`` run in the project's MLflow experiment with the report as artifact."""
    import mlflow

    from alphaline.reporting.publish import log_to_mlflow

    registry = Registry.for_project(project)
    summary = _summary(result)
    with registry.fluent() as exp_id, mlflow.start_run(
            run_name=f"backtest-{directory.name}", experiment_id=exp_id) as active:
        mlflow.log_params({"start": summary["start"], "end": summary["end"],
                           "retrain": retrain, "sessions": summary["sessions"]})
        mlflow.log_metrics({"final_nav": summary["final_nav"],
                            "total_return": summary["total_return"],
                            **{f"cost_{k}": v for k, v in summary["costs"].items()}})
        mlflow.set_tag("alphaline.kind", "backtest")
        run_id = active.info.run_id
    log_to_mlflow(directory, registry, run_id)
    return run_id


def _bar(days: list[dt.date]):
    """A progress bar over the sessions (sessions done, the rate and the time left; one line
    per session in the run's log file)."""
    from alphaline.console import track

    return track(days, "backtest", unit="session")


def _digest(p) -> str:
    import hashlib

    return hashlib.sha256(p.model_dump_json().encode()).hexdigest()
