"""The replay: the daily flow's own ledger day (:func:`alphaline.trading.daily.run_ledger_day`)
run for every session of a range, into a scratch ledger.

Per session it takes the validated bars as of that day, the point-in-time features of that
day, the model that trades that day (the champion, or the walk-forward refit of its recipe on
the labels known by the day), and then the one book, the risk engine, the paper broker and
the cost model exactly as the daily flow does. The ledger is the record: a run stopped
anywhere resumes at the last session it recorded (a ledger day is idempotent).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import select

from alphaline.config import Params
from alphaline.models.signal import SignalModel
from alphaline.models.tft import window_as_of
from alphaline.trading import daily
from alphaline.trading.brokers.paper import PaperBroker
from alphaline.trading.corporate_actions import actions_on, split_ratios
from alphaline.trading.costs import CostModel
from alphaline.trading.execution import Schedules
from alphaline.trading.ledger import Ledger, upgrade
from alphaline.trading.ledger.models import CashMovement, Fill, Position

log = logging.getLogger(__name__)

# sessions of bars each day's steps see: the snapshot's 21, the book's covariance look-back
HISTORY_PAD = 5


@dataclass(frozen=True)
class TradingModel:
    """A model and the name it trades under; ``trained_through``: the last session whose
    label it saw (None: not known, e.g. a registry champion)."""

    signal: SignalModel
    version: str
    trained_through: dt.date | None = None


ModelFor = Callable[[dt.date], TradingModel]


@dataclass
class ReplayRun:
    """Where a replay keeps its state: the scratch ledger, the paper broker's journal and
    the models it fitted, all under ``directory``."""

    directory: Path
    versions: dict[str, dict] = field(default_factory=dict)

    @property
    def ledger_url(self) -> str:
        return f"sqlite:///{self.directory / 'ledger.db'}"

    @property
    def journal(self) -> Path:
        return self.directory / "paper_broker.jsonl"

    @property
    def versions_file(self) -> Path:
        return self.directory / "versions.json"

    def load_versions(self) -> None:
        if self.versions_file.is_file():
            self.versions = json.loads(self.versions_file.read_text())

    def note_version(self, model: TradingModel, day: dt.date) -> None:
        entry = self.versions.setdefault(model.version, {
            "first_day": str(day), "trained_through": None if model.trained_through is None
            else str(model.trained_through)})
        entry["last_day"] = str(day)
        self.versions_file.write_text(json.dumps(self.versions, indent=2))


def sessions_done(ledger: Ledger) -> set[dt.date]:
    nav = ledger.nav_history()
    return set(pd.to_datetime(nav["day"]).dt.date) if len(nav) else set()


def day_window(bars: pd.DataFrame, dates: np.ndarray, day: dt.date, lookback: int
               ) -> pd.DataFrame:
    """The bars of the ``lookback`` sessions up to ``day`` (``dates``: the bars' sorted
    distinct dates): what the day's snapshot, book and marks read."""
    ts = np.datetime64(pd.Timestamp(day))
    end = np.searchsorted(dates, ts, side="right")
    start = dates[max(end - lookback, 0)]
    return bars[(bars["date"] >= start) & (bars["date"] <= ts)]


def replay_sessions(bars: pd.DataFrame, features: pd.DataFrame, sessions: list[dt.date],
                    params: Params, run: ReplayRun, model_for: ModelFor,
                    progress: Callable[[list[dt.date]], Iterable[dt.date]] | None = None
                    ) -> Ledger:
    """Run the ledger day for each of ``sessions`` in order (those the run's ledger already
    recorded, except the last, are skipped: the last is run again to finish it).

    ``bars``: validated bars through the last session (no later rows are read for a day);
    ``features``: ``date, symbol`` + the models' features, point-in-time.
    """
    run.directory.mkdir(parents=True, exist_ok=True)
    upgrade(run.ledger_url)
    ledger = Ledger(run.ledger_url, scratch=True)
    run.load_versions()
    done = sessions_done(ledger)
    if done:
        last = max(done)
        sessions = [d for d in sessions if d not in done or d == last]
        log.info("resuming the replay at %s (%d sessions left)", sessions[0] if sessions
                 else last, len(sessions))
    broker = PaperBroker(CostModel.from_params(params.broker), journal=run.journal,
                         schedules=Schedules.from_params(params.broker.execution))
    bars = bars.sort_values(["date", "symbol"], ignore_index=True)
    dates = np.sort(bars["date"].unique())
    lookback = max(params.portfolio.covariance_lookback, 21) + HISTORY_PAD
    by_day = {d: f for d, f in features.groupby("date", sort=False)}
    for day in (progress(sessions) if progress is not None else sessions):
        window = day_window(bars, dates, day, lookback)
        actions = actions_on(window, day)
        snap = daily.market_snapshot(window, day, splits=split_ratios(actions))
        model = model_for(day)
        run.note_version(model, day)
        scores = pd.DataFrame(columns=["symbol", "score", "reasons"])
        vectors = by_day.get(pd.Timestamp(day))
        if vectors is not None and snap.close:
            vectors = vectors[vectors["symbol"].isin(snap.close)].reset_index(drop=True)
            history = (window_as_of(features, bars, day, model.signal.context_sessions)
                       if model.signal.context_sessions else None)
            scores = day_scores(model.signal, vectors, history)
        daily.run_ledger_day(ledger, broker, params, snap, window, actions, scores,
                             model.version, vectors=vectors)
    return ledger


def day_scores(signal: SignalModel, vectors: pd.DataFrame,
               history: pd.DataFrame | None = None) -> pd.DataFrame:
    """The daily flow's scores (:func:`alphaline.trading.daily.score`, from the same rows)
    without the reasons, which a replay does not read."""
    return daily.score(signal, vectors, 0, history, explain=False)


def ledger_frames(ledger: Ledger, costs: CostModel) -> dict[str, pd.DataFrame]:
    """The replay's record as frames: NAV per session, fills with their costs split into
    commission, half spread and impact, borrow per session, positions."""
    nav = ledger.nav_history()
    with ledger.session() as s:
        fills = pd.DataFrame([
            {"filled_on": f.day, "symbol": f.symbol, "quantity": f.quantity, "price": f.price,
             "commission": f.commission, "slippage": f.slippage,
             "client_order_id": f.client_order_id}
            for f in s.scalars(select(Fill))])
        borrow = pd.DataFrame([{"day": c.day, "borrow": -c.amount} for c in s.scalars(
            select(CashMovement).where(CashMovement.kind == "borrow"))])
        positions = pd.DataFrame([
            {"day": p.day, "symbol": p.symbol, "quantity": p.quantity,
             "market_value": p.market_value} for p in s.scalars(select(Position))])
    if len(fills):
        fills["spread"] = costs.half_spread_bps * 1e-4 * (fills["quantity"].abs()
                                                          * fills["price"])
        fills["impact"] = fills["slippage"] - fills["spread"]
    return {"nav": nav, "fills": fills, "borrow": borrow, "positions": positions}
