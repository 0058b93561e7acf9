"""Kill switches: rules over the NAV history and the day's facts that stop or shrink trading.

:func:`evaluate_kill_switches` is pure (NAV history and facts in, a decision out);
:func:`apply_decision` is the one place a decision reaches the ledger, as a risk event
written once per day (a rerun with the same facts writes nothing).

- daily loss: NAV fell more than ``max_daily_loss`` in the last session → HALTED, working
  orders cancelled;
- drawdown: NAV more than ``max_drawdown`` below its peak → HALTED, working orders cancelled;
- velocity: NAV at least ``min_drawdown`` below its peak and lost per session (over the
  lookback) at a tier's speed → target weights × the tier's scale; the last tier keeps that
  share of every position, sells the rest, and moves to REDUCING;
- stale data: the newest validated bar is older than the trading day → no trading today;
- slippage: realized slippage (spread + impact of the day's fills, from their TCA) above
  ``max_slippage_ratio`` × the cost model's estimate for them at the decision → REDUCING;
- champion: the champion model cannot be loaded → no trading today.

A rule only raises the state's severity; a person lowers it (``alphaline risk resume``).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import pandas as pd

from alphaline.config import KillSwitchParams
from alphaline.errors import IllegalTransition
from alphaline.trading.orders import CANCELLED
from alphaline.trading.states import ACTIVE, HALTED, REDUCING, escalate

RULE_ACTOR = "rule:"  # risk events written by a rule carry this prefix and the rule names


@dataclass(frozen=True)
class DayFacts:
    """What the day says beyond the NAV history. ``None`` means "not known / not applicable"."""

    day: dt.date
    last_data_day: dt.date | None  # the newest validated bar's day
    champion_error: str | None = None  # why the champion could not be loaded
    realized_slippage: float | None = None  # dollars: spread + impact of the day's fills
    estimated_slippage: float | None = None  # dollars: the cost model's, at the decision


@dataclass(frozen=True)
class KillSwitchDecision:
    day: dt.date
    state: str | None  # the state to move to; None: no change
    rules: tuple[str, ...]  # the switches that fired
    reasons: tuple[str, ...]  # one sentence per switch, with its figures
    scale: float  # the book builder multiplies target weights by this
    keep_fraction: float | None  # last velocity tier: every held position × this, now
    cancel_working: bool
    no_trade_reason: str | None  # set: place no orders today

    @property
    def fired(self) -> bool:
        return bool(self.rules)


@dataclass(frozen=True)
class NavFigures:
    daily_return: float | None
    drawdown: float  # 1 - NAV / peak, ≥ 0
    loss_per_session: float  # NAV lost per session over the lookback, ≥ 0
    sessions: int


def nav_series(history: pd.DataFrame | pd.Series) -> pd.Series:
    """NAV by day from ``Ledger.nav_history()`` (columns ``day, nav``) or a Series."""
    if isinstance(history, pd.DataFrame):
        history = history.set_index("day")["nav"]
    return history.sort_index().astype("float64").dropna()


def nav_figures(nav: pd.Series, lookback: int) -> NavFigures:
    """Last session's return, drawdown from the peak, and the speed of loss over at most
    ``lookback`` sessions (fewer when the history is shorter)."""
    values = nav.to_numpy()
    if len(values) == 0:
        return NavFigures(None, 0.0, 0.0, 0)
    last, peak = values[-1], values.max()
    daily = values[-1] / values[-2] - 1 if len(values) >= 2 and values[-2] > 0 else None
    k = min(lookback, len(values) - 1)
    speed = max(0.0, 1 - last / values[-1 - k]) / k if k >= 1 and values[-1 - k] > 0 else 0.0
    drawdown = max(0.0, 1 - last / peak) if peak > 0 else 0.0
    return NavFigures(daily, drawdown, speed, len(values))


def evaluate_kill_switches(history: pd.DataFrame | pd.Series, facts: DayFacts,
                           limits: KillSwitchParams) -> KillSwitchDecision:
    """Every switch over the NAV history (through ``facts.day``) and the day's facts."""
    v = limits.velocity
    f = nav_figures(nav_series(history), v.lookback_sessions)
    state: str | None = None
    rules: list[str] = []
    reasons: list[str] = []
    scale, keep, no_trade = 1.0, None, None

    def fire(rule: str, reason: str, to: str | None = None) -> None:
        nonlocal state
        rules.append(rule)
        reasons.append(reason)
        state = escalate(state or ACTIVE, to) if to else state

    if f.daily_return is not None and -f.daily_return > limits.max_daily_loss:
        fire("daily_loss", f"daily loss {-f.daily_return:.2%} > limit "
             f"{limits.max_daily_loss:.2%}: halt and cancel working orders", HALTED)
    if f.drawdown > limits.max_drawdown:
        fire("drawdown", f"drawdown {f.drawdown:.2%} from peak > limit "
             f"{limits.max_drawdown:.2%}: halt and cancel working orders", HALTED)
    tier = _velocity_tier(f, limits)
    if tier is not None:
        scale = tier.scale
        last = tier is v.tiers[-1]
        keep = tier.scale if last else None
        fire(f"velocity_{tier.name}",
             f"{tier.name} drawdown: losing {f.loss_per_session:.2%} of NAV per session over "
             f"{min(v.lookback_sessions, f.sessions - 1)} sessions (tier from "
             f"{tier.loss_per_session:.2%}), {f.drawdown:.2%} below peak: "
             + (f"keep {tier.scale:.0%} of every position, sell the rest" if last
                else f"book scaled to {tier.scale:.0%}"), REDUCING if last else None)
    if facts.last_data_day is None or facts.last_data_day < facts.day:
        no_trade = (f"stale data: the newest validated bar is from "
                    f"{facts.last_data_day or 'nowhere'}, the trading day is {facts.day}")
        fire("stale_data", no_trade)
    ratio = _slippage_ratio(facts)
    if ratio is not None and ratio > limits.max_slippage_ratio:
        fire("slippage", f"realized slippage {facts.realized_slippage:,.2f} is {ratio:.1f}× "
             f"the cost model's estimate {facts.estimated_slippage:,.2f} (cap "
             f"{limits.max_slippage_ratio:g}×): reduce only", REDUCING)
    if facts.champion_error:
        champion = f"champion cannot be loaded: {facts.champion_error}"
        no_trade = f"{no_trade}; {champion}" if no_trade else champion
        fire("champion", champion)
    if state == HALTED:
        scale, keep = 0.0, None
    return KillSwitchDecision(facts.day, state, tuple(rules), tuple(reasons), scale, keep,
                              state == HALTED, no_trade)


def _velocity_tier(f: NavFigures, limits: KillSwitchParams):
    v = limits.velocity
    if f.drawdown < v.min_drawdown or f.loss_per_session <= 0:
        return None
    reached = [t for t in v.tiers if f.loss_per_session >= t.loss_per_session]
    return reached[-1] if reached else None


def _slippage_ratio(facts: DayFacts) -> float | None:
    real, est = facts.realized_slippage, facts.estimated_slippage
    if real is None or est is None or not (math.isfinite(real) and math.isfinite(est)):
        return None
    if est <= 0:
        return math.inf if real > 0 else None
    return real / est


def headroom(history: pd.DataFrame | pd.Series, limits: KillSwitchParams) -> list[dict]:
    """How far each NAV switch is from firing: ``rule, value, limit, headroom`` (limit −
    value; ≤ 0 means it fires)."""
    v = limits.velocity
    f = nav_figures(nav_series(history), v.lookback_sessions)
    daily_loss = max(0.0, -(f.daily_return or 0.0))
    first = v.tiers[0]
    rows = [
        {"rule": "daily_loss", "value": daily_loss, "limit": limits.max_daily_loss},
        {"rule": "drawdown", "value": f.drawdown, "limit": limits.max_drawdown},
        {"rule": "velocity_drawdown_gate", "value": f.drawdown, "limit": v.min_drawdown},
        {"rule": f"velocity_{first.name}", "value": f.loss_per_session,
         "limit": first.loss_per_session},
    ]
    for row in rows:
        row["headroom"] = row["limit"] - row["value"]
    return rows


def apply_decision(ledger, decision: KillSwitchDecision, current: str | None = None) -> str:
    """Write the decision as a risk event and return the state trading runs under today.

    The state only escalates (a rule never lowers what a person or rule set). Idempotent: a
    rerun of the day with the same verdict writes nothing, so a person's ``resume`` after
    the first run holds for that day.
    """
    current = current or ledger.trading_state()
    if not decision.fired:
        return current
    actor = (RULE_ACTOR + ",".join(decision.rules))[:100]
    reason = "; ".join(decision.reasons)
    for event in ledger.risk_events(day=decision.day):
        if event.actor == actor and event.reason == reason:
            return current
    state = escalate(current, decision.state)
    ledger.set_trading_state(state, reason, actor=actor, day=decision.day)
    return state


def cancel_working(ledger, cause: str) -> list[str]:
    """Cancel every working order (what HALTED does), each with its event; returns ids.

    An order that reached a final state in between is left as it is."""
    cancelled = []
    for order in ledger.working_orders():
        try:
            ledger.transition(order.client_order_id, CANCELLED, cause)
        except IllegalTransition:
            continue
        cancelled.append(order.client_order_id)
    return cancelled


BROKER_DISCONNECTED = "broker_disconnected"


def trip_broker_switch(ledger, rule: str, reason: str, day: dt.date | None) -> str:
    """The broker's kill switch: HALTED with ``reason`` (``rule``: ``broker_disconnected``
    or ``reconciliation``), written once (the same rule and reason again writes nothing).
    Like every rule it only raises the state; ``alphaline risk resume`` lowers it."""
    actor = (RULE_ACTOR + rule)[:100]
    event = ledger.trading_state_event()
    if event is not None and event.state == HALTED and event.actor == actor \
            and event.reason == reason:
        return HALTED
    ledger.set_trading_state(HALTED, reason, actor=actor, day=day)
    return HALTED
