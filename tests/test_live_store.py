"""Live state apart from research outputs: the daily flow appends to state/live, never to a
DVC output, and the research ingest reads back the bars the source can no longer deliver."""

import datetime as dt
import hashlib
import shutil

import pandas as pd
import yaml

from alphaline.calendar import sessions
from alphaline.pipelines import ingest
from alphaline.pipelines.synthetic import generate_market
from alphaline.project import Project
from tests.conftest import make_project


def test_research_ingest_reads_back_what_only_the_live_store_holds(tmp_path):
    external = tmp_path / "external"
    external.mkdir()
    bars, _ = generate_market(4, "2022-01-03", "2023-07-14", seed=5)
    bars.to_parquet(external / "prices.parquet", index=False)
    project = make_project(tmp_path / "p", data__source="files",
                           data__files__path=str(external), data__end="2023-06-30")
    ingest.ingest_history(project)
    ingest.validate_history(project)
    for day in sessions("XNYS", "2023-07-03", "2023-07-14"):
        ingest.store_batch(project, ingest.fetch_window(project, day.date()), day.date())
    # The vendor now serves only a recent window: the source cannot refill July's first days.
    bars[bars["date"] >= pd.Timestamp("2023-07-10")].to_parquet(external / "prices.parquet",
                                                                 index=False)
    later = Project(project.root, project.params.with_overrides({"data.end": "2023-07-14"}))
    raw = ingest.ingest_history(later)
    july = raw[raw["date"] >= pd.Timestamp("2023-07-03")]
    assert july["date"].nunique() == 9 and july["symbol"].nunique() == 4
    assert set(july.loc[july["date"] < pd.Timestamp("2023-07-10"), "origin"]) == \
        {str(project.live_bars)}
    assert ingest.validate_history(later).success
    # ... but never past data.end
    assert raw["date"].max() == pd.Timestamp("2023-07-14")


def digests(project: Project) -> dict[str, str]:
    research = [project.validated_bars, project.raw_bars, project.feature_table,
                project.label_table]
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in research}


def test_a_daily_run_leaves_research_outputs_untouched(trained_project, tmp_path):
    """Byte-identical data/ after a day whose batch quarantines one symbol and trades the rest."""
    from alphaline.flows.daily_trading import daily_trading
    from alphaline.trading.ledger import Ledger

    shutil.copytree(trained_project.root, tmp_path / "p")
    project = Project.load(tmp_path / "p")
    p = project.params
    day = sessions(p.data.calendar, p.data.end + dt.timedelta(days=1),
                   p.data.end + dt.timedelta(days=10))[0].date()
    external = tmp_path / "external"
    external.mkdir()
    syn = p.data.synthetic
    bars, _ = generate_market(syn.n_symbols, p.data.start, day, syn.seed, syn.alpha_strength,
                              syn.mode)
    bars.loc[(bars["symbol"] == "SYN004") & (bars["date"] == pd.Timestamp(day)), "low"] = 1e6
    bars.to_parquet(external / "prices.parquet", index=False)
    raw = yaml.safe_load((project.root / "params.yaml").read_text())
    raw["data"]["source"] = "files"
    raw["data"]["files"]["path"] = str(external)
    (project.root / "params.yaml").write_text(yaml.safe_dump(raw))

    before = digests(project)
    out = daily_trading(day=day, root=str(project.root))
    assert digests(project) == before
    live = pd.read_parquet(project.live_bars)
    today = live[live["date"] == pd.Timestamp(day)]
    assert len(today) == syn.n_symbols - 1 and "SYN004" not in set(today["symbol"])
    assert project.live_feature_table.is_file() and (project.live_feast_dir / "online.db").is_file()
    orders = Ledger(project.ledger_url).orders(day=day)
    assert orders and "SYN004" not in {o.symbol for o in orders}
    assert out["orders_submitted"]
    (folder,) = project.quarantine_dir.iterdir()
    assert set(pd.read_parquet(folder / "bars.parquet")["symbol"]) == {"SYN004"}
