"""SIGKILL at random moments of three trading days, rerun to completion, and the ledger is the
one an uninterrupted run writes; no client order id reaches the broker twice.

The killed child runs the ledger side of the daily flow: the function the flow's ``trade`` task
calls (``trading.daily.run_ledger_day``), without Prefect. Bars and scores come from a real,
uninterrupted Prefect run of the flow, whose ledger is the reference every interrupted run
must equal. The child is forked from a server that imported everything once, so 50 kills
take minutes, not the hour 50 Prefect starts would; it is killed by time (SIGKILL from the
parent at a random offset within a whole run), with no hook in the code under test.
"""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import random
import shutil
import time
from collections import Counter
from pathlib import Path

import pytest

from alphaline.calendar import sessions
from alphaline.pipelines.synthetic import generate_market
from alphaline.project import Project
from alphaline.trading.ledger import Ledger
from alphaline.trading.ledger.models import DailyNav, Fill, Order, Position
from tests.conftest import open_ledger

KILLS = 50
SEED = 20240102


def trading_days(project: Project, n: int) -> list[dt.date]:
    end = project.params.data.end
    return [d.date() for d in sessions(project.params.data.calendar, end + dt.timedelta(days=1),
                                       end + dt.timedelta(days=3 * n + 7))[:n]]


def run_days(root: str, ledger_url: str, journal: str, bars, days: list[dict],
             progress: str) -> None:
    """The ledger side of ``trade_day`` for each day (scores given): the flow's own
    ``run_ledger_day``, without Prefect."""
    from alphaline.trading import daily
    from alphaline.trading.brokers.paper import PaperBroker
    from alphaline.trading.costs import CostModel

    project = Project.load(root)
    p = project.params
    with open(progress, "a", buffering=1) as log:
        for d in days:
            day = d["day"]
            log.write(f"start {day}\n")
            ledger = Ledger(ledger_url)
            broker = PaperBroker(CostModel.from_params(p.broker), journal=Path(journal))
            daily.run_ledger_day(ledger, broker, p, d["snap"], bars, d["actions"], d["scores"],
                                 d["version"])
            ledger.engine.dispose()
            log.write(f"done {day}\n")


def _noop() -> None:
    """A child that does nothing: it makes the fork server import everything once."""


def ledger_state(url: str) -> dict:
    """What must not differ: orders with statuses, fills, positions, cash, NAV."""
    ledger = Ledger(url)

    def rows(model, key: list[str], cols: list[str]) -> list[tuple]:
        frame = ledger.table(model)
        if frame.empty:
            return []
        frame = frame.sort_values(key)[cols].round(6)
        return [tuple(r) for r in frame.astype(str).itertuples(index=False)]

    state = {
        "orders": rows(Order, ["client_order_id"],
                       ["client_order_id", "trading_day", "symbol", "side", "quantity",
                        "reference_price", "status", "reject_reason", "sequence", "approved",
                        "filled_quantity", "expires_on"]),
        "fills": rows(Fill, ["fill_id"], ["fill_id", "client_order_id", "day", "symbol",
                                          "quantity", "price", "commission", "slippage"]),
        "positions": rows(Position, ["day", "symbol"],
                          ["day", "symbol", "quantity", "price", "market_value"]),
        "nav": rows(DailyNav, ["day"], ["day", "cash", "long_value", "short_value", "nav",
                                        "gross_exposure", "net_exposure"]),
        "cash": round(ledger.cash(), 6),
    }
    ledger.engine.dispose()
    return state


def submissions(journal: Path) -> Counter:
    """Submit records per client order id in the paper broker's own journal."""
    entries = [json.loads(line) for line in journal.read_text().splitlines()]
    return Counter(e["id"] for e in entries if e["event"] == "submit")


@pytest.mark.slow
@pytest.mark.timeout(3600)  # the trained champion alone takes minutes on a busy machine
def test_sigkill_at_50_random_points_leaves_the_ledger_an_uninterrupted_run_writes(
        trained_project, tmp_path):
    from alphaline.flows.daily_trading import daily_trading, paper_journal
    from alphaline.trading.corporate_actions import actions_on, split_ratios
    from alphaline.trading.daily import market_snapshot
    from alphaline.trading.ledger.models import Signal

    # The reference: the real flow, three sessions, never interrupted.
    project = Project.load(shutil.copytree(trained_project.root, tmp_path / "reference"))
    days = trading_days(project, 3)
    for day in days:
        daily_trading(day=day, root=str(project.root))
    reference = ledger_state(project.ledger_url)
    assert reference["fills"] and reference["orders"], "the reference run traded nothing"
    sent = {o[0] for o in reference["orders"] if o[6] not in ("REJECTED",)}
    assert set(submissions(paper_journal(project))) == sent

    # The flow's inputs to the ledger steps, from the same market and the recorded scores.
    syn, data = project.params.data.synthetic, project.params.data
    bars, _ = generate_market(syn.n_symbols, data.start, days[-1], syn.seed, syn.alpha_strength,
                              syn.mode)
    signals = Ledger(project.ledger_url).table(Signal)
    inputs = []
    for day in days:
        today = (signals[signals["trading_day"] == day].rename(columns={"bet_size": "size"})
                 .sort_values("symbol"))
        scores = today[["symbol", "score", "probability", "size"]].assign(
            reasons=[[] for _ in range(len(today))]).reset_index(drop=True)
        actions = actions_on(bars, day)
        inputs.append({"day": day, "snap": market_snapshot(bars, day,
                                                           splits=split_ratios(actions)),
                       "scores": scores, "version": str(today["model_version"].iloc[0]),
                       "actions": actions})

    template = tmp_path / "empty-ledger.db"
    open_ledger(f"sqlite:///{template}").engine.dispose()
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["alphaline.flows.daily_trading", "tests.test_crash"])

    def trial_dir(name: str) -> tuple[str, str, str]:
        """A fresh, migrated, empty ledger; an empty broker journal; a progress log."""
        folder = tmp_path / name
        folder.mkdir()
        shutil.copy(template, folder / "ledger.db")
        return (f"sqlite:///{folder / 'ledger.db'}", str(folder / "paper.jsonl"),
                str(folder / "progress.txt"))

    def child(url: str, journal: str, todo: list[dict], progress: str):
        proc = ctx.Process(target=run_days,
                           args=(str(project.root), url, journal, bars, todo, progress))
        proc.start()
        return proc

    warm = ctx.Process(target=_noop)  # start the fork server (its imports) before timing
    warm.start()
    warm.join(600)
    # An uninterrupted child run: the same ledger as the flow's, and the span to kill within.
    url, journal, progress = trial_dir("uninterrupted")
    started = time.perf_counter()
    proc = child(url, journal, inputs, progress)
    proc.join(300)
    span = time.perf_counter() - started
    assert proc.exitcode == 0
    assert ledger_state(url) == reference, "the child's steps no longer match the flow's"

    rng = random.Random(SEED)
    mid_day, left_new, equal, began = 0, 0, 0, time.perf_counter()
    for k in range(KILLS):
        url, journal, progress = trial_dir(f"kill-{k:02d}")
        proc = child(url, journal, inputs, progress)
        time.sleep(rng.uniform(0.0, span))
        proc.kill()  # SIGKILL
        proc.join(60)
        lines = Path(progress).read_text().splitlines() if Path(progress).exists() else []
        done = {line.split()[1] for line in lines if line.startswith("done")}
        mid_day += len([x for x in lines if x.startswith("start")]) > len(done)
        crashed = Ledger(url)
        left_new += bool(crashed.orders(status="NEW"))
        crashed.engine.dispose()
        # rerun to completion from the first day the killed run did not finish
        todo = [d for d in inputs if str(d["day"]) not in done]
        run_days(str(project.root), url, journal, bars, todo, progress)
        assert ledger_state(url) == reference, f"kill {k}: the ledger differs"
        counts = submissions(Path(journal))
        assert all(n == 1 for n in counts.values()), f"kill {k}: an id sent twice: {counts}"
        assert set(counts) == sent, f"kill {k}: the broker saw other orders"
        equal += 1
    took = time.perf_counter() - began
    print(f"\nSIGKILL: {equal}/{KILLS} equal; {mid_day} kills mid-day, {left_new} left NEW "
          f"orders; one uninterrupted run {span:.2f} s; {KILLS} kills + reruns {took:.0f} s")
    assert equal == KILLS
    assert mid_day >= KILLS // 4, "too few kills landed inside a day to mean anything"
