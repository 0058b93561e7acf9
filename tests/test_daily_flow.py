"""The daily trading flow on a trained project, through Prefect's test harness."""

import datetime as dt
import hashlib
import shutil
import sqlite3
from contextlib import closing

import pandas as pd
import pytest
import yaml

from alphaline.calendar import sessions
from alphaline.flows.daily_trading import daily_trading
from alphaline.pipelines.synthetic import generate_market
from alphaline.pipelines.validate import ValidationFailed
from alphaline.project import Project
from alphaline.trading.ledger import Ledger
from alphaline.trading.ledger.models import Fill, Order, Signal
from alphaline.trading.portfolio import quantile_sides
from tests.conftest import open_ledger


def copy_project(src: Project, dst) -> Project:
    shutil.copytree(src.root, dst)
    return Project.load(dst)


def trading_days(project: Project, n: int) -> list[dt.date]:
    end = project.params.data.end
    return [d.date() for d in sessions(project.params.data.calendar, end + dt.timedelta(days=1),
                                       end + dt.timedelta(days=3 * n + 7))[:n]]


@pytest.fixture(scope="module")
def traded(trained_project, tmp_path_factory):
    project = copy_project(trained_project, tmp_path_factory.mktemp("traded") / "p")
    d1, d2 = trading_days(project, 2)
    first = daily_trading(day=d1, root=str(project.root))
    rerun = daily_trading(day=d1, root=str(project.root))
    second = daily_trading(day=d2, root=str(project.root))
    return project, first, rerun, second


def test_first_day_records_signals_and_places_risk_checked_orders(traded):
    project, first, _, _ = traded
    ledger = Ledger(project.ledger_url)
    orders = ledger.orders(day=dt.date.fromisoformat(first["day"]))
    n = project.params.data.synthetic.n_symbols
    assert {o.status for o in orders} == {"FILLED"}  # filled at the next day's close
    signals = ledger.table(Signal)
    today = signals[signals["trading_day"] == pd.Timestamp(first["day"]).date()]
    assert len(today) == n
    # meta-labeling: every signal has a probability; only the trusted sides get a bet
    assert today["probability"].between(0, 1).all()
    bets = today.set_index("symbol")["bet_size"]
    threshold = project.params.model.meta_label.threshold
    assert ((bets == 0) | (bets.abs() >= threshold)).all()
    # the default book is the one the gate measures: the score's top and bottom quantile
    assert project.params.portfolio.method == "quantile_long_short"
    sides = quantile_sides(today.set_index("symbol")["score"], project.params.portfolio.quantile)
    assert {o.symbol for o in orders} == set(sides.index[sides != 0])
    assert "shap" in signals["reasons"].iloc[0]  # every signal carries its top SHAP reasons
    assert signals["model_version"].iloc[0] == first["model_version"]
    report = project.reports_dir / "daily" / f"{first['day']}.md"
    assert report.is_file() and "Top and bottom scores" in report.read_text()


def test_the_day_report_carries_the_risk_section_and_reaches_the_prefect_ui(traded):
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    project, _, _, second = traded
    text = (project.reports_dir / "daily" / f"{second['day']}.md").read_text()
    assert "## Risk" in text
    for method in ("historical", "parametric", "cornish_fisher", "monte_carlo"):
        assert method in second["risk"]["var"], method
    assert {s["scenario"] for s in second["risk"]["stress"]} >= {"2008 Lehman week",
                                                            "March 2020"}
    assert second["risk"]["exposures"]["gross"] > 0 and second["trading_state"] == "ACTIVE"
    assert second["borrow_fee"] > 0  # the short leg pays its borrow each session

    async def artifacts():
        async with get_client() as client:
            return await client.read_artifacts(artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=["daily-report", "daily-orders"])))
    found = asyncio.run(artifacts())
    assert {a.key for a in found} == {"daily-report", "daily-orders"}
    assert any("## Risk" in (a.data or "") for a in found if a.key == "daily-report")


def test_a_champion_that_cannot_be_loaded_stops_trading_with_its_reason(trained_project,
                                                                          tmp_path):
    from alphaline.models.registry import CHAMPION, Registry

    project = copy_project(trained_project, tmp_path / "p")
    Registry.for_project(project).client.delete_registered_model_alias(
        project.params.model.name, CHAMPION)  # rolled back to nothing, say
    out = daily_trading(day=trading_days(project, 1)[0], root=str(project.root))
    assert out["orders_submitted"] == [] and out["orders_rejected"] == []
    assert "champion" in out["no_trade_reason"].lower()
    events = open_ledger(project.ledger_url).risk_events()
    assert any("champion" in e.actor for e in events), [e.actor for e in events]


def test_rerun_of_the_same_day_places_nothing(traded):
    project, first, rerun, _ = traded
    assert rerun["orders_submitted"] == []
    assert rerun["orders_already_placed"] == len(first["orders_submitted"])
    assert rerun["signals"] == 0
    ledger = Ledger(project.ledger_url)
    assert len(ledger.orders(day=dt.date.fromisoformat(first["day"]))) == \
        len(first["orders_submitted"])


def test_orders_fill_at_the_next_close_and_nav_is_marked(traded):
    project, first, _, second = traded
    ledger = Ledger(project.ledger_url)
    fills = ledger.table(Fill)
    assert second["fills"] == len(first["orders_submitted"]) == len(fills)
    assert (fills["day"] == pd.Timestamp(second["day"]).date()).all()
    assert (fills["commission"] > 0).all() and (fills["slippage"] > 0).all()
    nav = ledger.nav_history()
    assert list(nav["day"].astype(str)) == [first["day"], second["day"]]
    assert abs(nav["net_exposure"].iloc[-1]) <= project.params.risk.max_net_exposure
    assert nav["gross_exposure"].iloc[-1] <= project.params.risk.max_gross_exposure


def test_non_session_day_is_skipped(traded):
    project, *_ = traded
    out = daily_trading(day=dt.date(2023, 12, 25), root=str(project.root))
    assert out["skipped"] == "not an exchange session"


def test_halted_trading_rejects_every_order(trained_project, tmp_path):
    project = copy_project(trained_project, tmp_path / "p")
    open_ledger(project.ledger_url).set_trading_state("HALTED", "test")
    out = daily_trading(day=trading_days(project, 1)[0], root=str(project.root))
    assert out["orders_submitted"] == [] and out["orders_rejected"]
    assert all(why == "trading is HALTED" for _, why in out["orders_rejected"])
    assert {o.status for o in Ledger(project.ledger_url).orders()} == {"REJECTED"}


def digests(project: Project) -> dict[str, str]:
    paths = [project.validated_bars, project.feature_table, project.label_table,
             project.feast_dir / "online.db",
             project.live_bars, project.live_feature_table, project.live_feast_dir / "online.db"]
    out = {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in paths if p.exists()}
    # The ledger by content: a run takes and releases its lock row there, which changes the
    # file's bytes but none of its rows.
    with closing(sqlite3.connect(project.state_dir / "ledger.db")) as conn:
        out["ledger"] = hashlib.sha256("\n".join(conn.iterdump()).encode()).hexdigest()
    return out


def test_bad_batch_is_quarantined_and_nothing_downstream_changes(traded, tmp_path):
    source, _first, _, _ = traded
    project = copy_project(source, tmp_path / "p")
    day = trading_days(project, 3)[2]
    # The user's own files: the same market, with one impossible bar on the new day.
    external = tmp_path / "external"
    external.mkdir()
    syn = project.params.data.synthetic
    bars, _ = generate_market(syn.n_symbols, project.params.data.start, day, syn.seed,
                              syn.alpha_strength, syn.mode)
    bars.loc[(bars["symbol"] == "SYN004") & (bars["date"] == pd.Timestamp(day)), "low"] = 1e6
    bars.to_parquet(external / "prices.parquet", index=False)
    raw = yaml.safe_load((project.root / "params.yaml").read_text())
    raw["data"]["source"] = "files"
    raw["data"]["files"]["path"] = str(external)
    raw["validation"]["on_symbol_failure"] = "stop_batch"  # quarantine_symbol: test_live_store
    (project.root / "params.yaml").write_text(yaml.safe_dump(raw))

    before = digests(project)
    orders_before = len(Ledger(project.ledger_url).table(Order))
    with pytest.raises(ValidationFailed) as err:
        daily_trading(day=day, root=str(project.root))
    assert "prices.parquet: symbol SYN004" in str(err.value)
    assert digests(project) == before
    assert len(Ledger(project.ledger_url).table(Order)) == orders_before
    quarantined = list(project.quarantine_dir.iterdir())
    assert len(quarantined) == 1 and (quarantined[0] / "failures.txt").is_file()
