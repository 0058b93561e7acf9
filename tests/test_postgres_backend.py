"""The stores on PostgreSQL as on SQLite: the ledger's migrations, signals, reruns and lock
(two connections racing), MLflow's registry and Optuna's storage, each through the product's
own code, on both backends; and a URL's password never reaches a log or the CLI."""

from __future__ import annotations

import datetime as dt
import logging
import subprocess
import sys
import textwrap
import threading

import numpy as np
import optuna
import pandas as pd
import pytest
from sqlalchemy import create_engine, inspect, select, text
from typer.testing import CliRunner

from alphaline.config import load_params
from alphaline.flows.cli import app
from alphaline.models.registry import CHALLENGER, CHAMPION, Registry
from alphaline.models.tuning import family_trials, record_ensemble, tune_member
from alphaline.project import Project
from alphaline.trading import locks
from alphaline.trading.ledger import Ledger, revisions, upgrade
from alphaline.trading.ledger.models import Lock, Signal
from tests.conftest import BACKENDS, REPO, database_url, make_project, open_ledger

PARAMS = load_params(REPO / "params.yaml")
DAY = dt.date(2024, 1, 2)
MINUTE = dt.timedelta(minutes=1)


@pytest.mark.parametrize("backend", BACKENDS)
def test_migrations_reach_head_once_and_a_rerun_changes_nothing(request, backend):
    url = database_url(request, backend, "ledger")
    before, head = upgrade(url)
    assert before is None and revisions(url) == (head, head)
    engine = Ledger(url).engine
    tables = set(inspect(engine).get_table_names())
    assert {"alembic_version", "orders", "order_events", "fills", "signals", "positions",
            "daily_nav", "cash_movements", "locks"} <= tables
    columns = {c["name"] for c in inspect(engine).get_columns("signals")}
    assert {"score", "rank", "reasons", "probability", "bet_size"} <= columns
    assert upgrade(url) == (head, head)
    with engine.connect() as conn:
        assert conn.scalar(text("select count(*) from alembic_version")) == 1
    engine.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
def test_signals_are_recorded_once_and_read_back_as_written(request, backend):
    ledger = open_ledger(database_url(request, backend, "ledger"))
    long_reason = "momentum_252 " * 40  # longer than any VARCHAR a store might cut it to
    scores = pd.DataFrame({"symbol": ["AAA", "BBB", "CCC"], "score": [0.3, -0.1, 0.2],
                           "reasons": [[long_reason], ["x"], []],
                           "probability": [0.7, np.nan, 0.6], "size": [1.0, 0.5, np.nan]})
    assert ledger.record_signals(DAY, scores, "alphaline", "7") == 3
    assert ledger.record_signals(DAY, scores, "alphaline", "7") == 0  # a rerun adds nothing
    assert ledger.record_signals(DAY + dt.timedelta(days=1), scores, "alphaline", "7") == 3
    with ledger.session() as s:
        rows = {r.symbol: r for r in s.scalars(select(Signal).where(Signal.trading_day == DAY))}
    assert [rows[s].rank for s in ("AAA", "CCC", "BBB")] == [1, 2, 3]
    assert rows["AAA"].score == pytest.approx(0.3) and long_reason in rows["AAA"].reasons
    assert rows["BBB"].probability is None and rows["CCC"].bet_size is None
    assert rows["AAA"].trading_day == DAY and isinstance(rows["AAA"].trading_day, dt.date)


@pytest.mark.parametrize("backend", BACKENDS)
def test_nav_and_state_events_keep_their_times(request, backend):
    ledger = open_ledger(database_url(request, backend, "ledger"))
    ledger.ensure_initial_cash(DAY, 50_000.0)
    nav = ledger.mark_to_market(DAY, {})
    assert nav.nav == pytest.approx(50_000.0) and ledger.mark_to_market(DAY, {}).nav == nav.nav
    assert len(ledger.nav_history()) == 1  # a rerun of the day rewrites no second row
    event = ledger.set_trading_state("HALTED", "drawdown", actor="test", day=DAY)
    assert ledger.trading_state() == "HALTED"
    stored = ledger.trading_state_event()
    assert stored.id == event.id and stored.reason == "drawdown"
    assert ledger.risk_events(day=DAY)[0].state == "HALTED"


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_connections_taking_over_one_expired_lock_exactly_one_wins(request, backend):
    """The compare-and-swap under real concurrency: on PostgreSQL the second UPDATE waits on
    the first one's row lock, then re-reads the row and matches nothing."""
    url = database_url(request, backend, "ledger")
    open_ledger(url)
    t0 = dt.datetime(2030, 1, 2, 12, 0)
    stale = locks.Holder("daily_trading", "another-host", 1, "old")
    engines = [create_engine(url) for _ in range(2)]
    assert locks.try_acquire(engines[0], "shared-state", stale, MINUTE, now=t0) is None
    later = t0 + 2 * MINUTE
    for round_ in range(5):
        barrier = threading.Barrier(2)
        holders = [locks.Holder.mine(f"racer-{round_}-{i}") for i in range(2)]
        results: list[object] = [None, None]

        def race(i: int, holders=holders, barrier=barrier, results=results,
                 now=later) -> None:
            barrier.wait()
            results[i] = locks.try_acquire(engines[i], "shared-state", holders[i], MINUTE,
                                           now=now)

        threads = [threading.Thread(target=race, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        winners = [i for i in range(2) if results[i] is None]
        assert len(winners) == 1, results
        loser = 1 - winners[0]
        assert results[loser].holder == str(holders[winners[0]])  # told who won
        assert locks.current_holder(engines[0]) == str(holders[winners[0]])
        later += 2 * MINUTE  # the winner's lock expires before the next round
    for engine in engines:
        engine.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_held_lock_is_seen_from_another_connection_and_freed_on_release(request, backend):
    ledger = open_ledger(database_url(request, backend, "ledger"))
    other = create_engine(ledger.url)
    with ledger.hold_lock("daily_trading", MINUTE) as me:
        assert locks.current_holder(other) == str(me)
        assert locks.try_acquire(other, "shared-state", locks.Holder.mine("retrain"),
                                 MINUTE) is not None
    assert locks.current_holder(other) is None and ledger.table(Lock).empty
    other.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
def test_registry_versions_aliases_and_tags(request, backend, tmp_path):
    import mlflow

    registry = Registry(database_url(request, backend, "mlflow"), tmp_path / "artifacts", "pg")
    client = registry.client
    client.create_registered_model("pg")
    with registry.fluent() as exp_id, mlflow.start_run(experiment_id=exp_id) as run:
        mlflow.log_dict({"features": ["a", "b"]}, "recipe.json")
        mlflow.log_metric("sharpe", 1.25)
    for _ in range(3):
        client.create_model_version("pg", f"{run.info.artifact_uri}/model", run.info.run_id)
    client.set_registered_model_alias("pg", CHALLENGER, "3")
    registry.tag_version("pg", "2", {"gate.decision": "promote", "gate.reason": "r" * 2000})
    client.set_registered_model_alias("pg", CHAMPION, "2")
    assert registry.alias_version("pg", CHAMPION) == "2"
    assert registry.alias_version("pg", CHALLENGER) == "3"
    assert registry.alias_version("pg", "nothing") is None
    assert registry.version_tags("pg", "2")["gate.reason"] == "r" * 2000
    assert registry.run_metrics("pg", "3") == {"sharpe": 1.25}
    assert registry.run_artifact("pg", "1", "recipe.json") == {"features": ["a", "b"]}
    client.set_model_version_tag("pg", "3", "retrain.as_of", "2024-02-01")
    assert registry.last_retrain_day("pg") == "2024-02-01"
    assert registry.prune_versions("pg", keep=1) == ["1"]  # 2 is champion, 3 challenger


def _tiny_problem(seed: int = 0):
    """80 sessions × 6 symbols, one informative feature: enough for two walk-forward folds."""
    from alphaline.models.cv import purged_walk_forward

    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2023-01-02", periods=80)
    frame = pd.DataFrame([(d, s) for d in dates for s in "ABCDEF"], columns=["date", "symbol"])
    frame["f1"] = rng.normal(size=len(frame))
    frame["f2"] = rng.normal(size=len(frame))
    y = 0.02 * frame["f1"] + rng.normal(scale=0.05, size=len(frame))
    splits = purged_walk_forward(frame["date"], n_splits=2, horizon=1, embargo=1,
                                 min_train_days=40)
    return frame[["f1", "f2"]], y, frame["date"], frame["symbol"], splits


@pytest.mark.parametrize("backend", BACKENDS)
def test_tuning_studies_on_the_storage_count_as_one_family(request, backend):
    storage = database_url(request, backend, "optuna")
    X, y, dates, symbols, splits = _tiny_problem()
    family = "alphaline|objectives=regression|features=signal|h=1"
    common = dict(sample_weight=None, seed=0, storage=storage,
                  base_params={"n_estimators": 10, "seed": 0, "rank_levels": 5,
                               "rank_truncation": 3}, space=PARAMS.tuning.search_space,
                  pruner_startup_trials=5, n_jobs=1, quantile=0.25, horizon=1)
    first = tune_member("regression", X, y, dates, symbols, splits, n_trials=2,
                        study_name="data-a-regression", family=family, **common)
    again = tune_member("regression", X, y, dates, symbols, splits, n_trials=1,
                        study_name="data-a-regression", family=family, **common)
    assert (first.n_trials, again.n_trials) == (2, 3)  # a rerun adds to the same study
    record_ensemble(storage, "data-a-ensemble", 0.05, 0.8, family=family)
    record_ensemble(storage, "data-b-ensemble", 0.04, 0.6, family=family)
    record_ensemble(storage, "other-ensemble", 0.01, 0.1, family="other|h=5")
    ledger = family_trials(storage, family)
    assert (ledger.n_trials, ledger.studies) == (5, 3)
    assert len(ledger.trial_sharpes) == 5 and {0.8, 0.6} <= set(ledger.trial_sharpes)
    assert set(first.trial_sharpes) <= set(ledger.trial_sharpes)
    assert family_trials(storage, "other|h=5").n_trials == 1


WORKER = textwrap.dedent("""
    import sys, optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name="shared", storage=sys.argv[1])
    study.optimize(lambda t: (t.suggest_float("x", -1, 1) - 0.3) ** 2, n_trials=5)
""")


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_worker_processes_share_one_study(request, backend):
    """What a Dask cluster of tuning workers does: each process loads the same study from the
    RDB storage and adds trials; none is lost or numbered twice."""
    storage = database_url(request, backend, "optuna")
    optuna.create_study(study_name="shared", storage=storage)
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, storage], cwd=REPO,
                                stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for w in workers:
        _, err = w.communicate(timeout=120)
        assert w.returncode == 0, err
    trials = optuna.load_study(study_name="shared", storage=storage).trials
    assert len(trials) == 10 and sorted(t.number for t in trials) == list(range(10))
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)


def test_the_project_points_all_three_stores_at_postgresql_from_the_environment(
        postgres_server, tmp_path, monkeypatch, caplog):
    project = make_project(tmp_path / "p", storage__ledger_url_env="ALPHALINE_TEST_LEDGER_URL",
                           storage__mlflow_tracking_uri_env="ALPHALINE_TEST_MLFLOW_URI",
                           storage__optuna_url_env="ALPHALINE_TEST_OPTUNA_URL")
    # a bare postgresql:// as people write it (SQLAlchemy 2.1 picks psycopg 3), and the
    # explicit postgresql+psycopg://
    urls = {"ALPHALINE_TEST_LEDGER_URL": postgres_server.database("ledger", "postgresql"),
            "ALPHALINE_TEST_MLFLOW_URI": postgres_server.database("mlflow", "postgresql"),
            "ALPHALINE_TEST_OPTUNA_URL": postgres_server.database("optuna")}
    for name, url in urls.items():
        monkeypatch.setenv(name, url)
    project = Project.load(project.root)
    assert (project.ledger_url, project.mlflow_tracking_uri, project.optuna_url) == tuple(
        urls.values())
    caplog.set_level(logging.DEBUG)
    result = CliRunner().invoke(app, ["db", "upgrade", "--root", str(project.root)])
    assert result.exit_code == 0, result.output
    assert Ledger(project.ledger_url).trading_state() == "ACTIVE"
    assert Registry.for_project(project).experiment_id()
    optuna.create_study(study_name="s", storage=project.optuna_url)
    assert not (project.state_dir / "ledger.db").exists()
    assert not (project.state_dir / "optuna.db").exists()
    shown = CliRunner().invoke(app, ["params", "--root", str(project.root)])
    assert shown.exit_code == 0, shown.output
    assert "Optuna" in shown.output and "alphaline:***@127.0.0.1" in shown.output
    password = postgres_server.password
    assert password not in result.output + shown.output + caplog.text
    assert all(password in url for url in urls.values())  # the URLs did carry it
