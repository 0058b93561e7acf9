"""Execution schedules: how an order is worked over a session, and what it fills at.

Pure functions, no I/O. The paper broker prices its fills with them; the IBKR adapter maps
the same :func:`execution_style` to the broker's order types, so both work an order alike.

Styles, chosen by the order's size against the name's ADV (``broker.execution``):

- ``MOC``: market on close, the whole order in the closing auction (orders below
  ``algo_participation`` of ADV, and every order of a name without an ADV);
- ``VWAP`` / ``TWAP`` (``algo``): slices across the session in proportion to the intraday
  volume profile / in equal parts (orders from ``algo_participation`` of ADV);
- ``AC``: the Almgren–Chriss trajectory, front-loaded as ``risk_aversion`` asks (orders
  from ``ac_participation`` of ADV).

The session is ``bins`` equal intervals. The volume profile is U-shaped by default
(:func:`u_shaped_profile`) or estimated from intraday bars (:func:`profile_from_intraday`).

Intraday price model (the paper broker's fills). A daily bar says where the session opened,
closed and how far it ranged, not the path in between. The path assumed is a Brownian
bridge from the open to the close on ``bins × steps_per_bin`` steps, its excursions above
the straight open→close line scaled so that its maximum is the bar's high and those below
scaled so that its minimum is the bar's low (:func:`intraday_path`). The noise is drawn
from a generator seeded by (``seed``, symbol, day): the same bar always gives the same path,
so a rerun of a day fills at the same prices. A slice executes at the mean of the path over
its interval. Without an open, high and low (close-only data) the path is flat at the close.

Costs of a schedule come from the one cost model (trading/costs.py): half the spread on
each slice's notional, and the square-root impact of each slice at its participation in
its interval's expected volume (``ADV × profile``). A VWAP schedule therefore pays exactly
the cost model's impact for the whole order; TWAP, which trades against the profile, and a
front-loaded Almgren–Chriss trajectory pay more impact.
"""

from __future__ import annotations

import datetime as dt
import math
import zlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from alphaline.config import ExecutionParams
from alphaline.trading.costs import CostModel

MOC, TWAP, VWAP, AC = "MOC", "TWAP", "VWAP", "AC"
STYLES = (MOC, TWAP, VWAP, AC)
SCHEDULED = (TWAP, VWAP, AC)  # styles worked across the session


def execution_style(quantity: float, adv: float, params: ExecutionParams) -> str:
    """``MOC`` | ``TWAP`` | ``VWAP`` | ``AC`` for an order of ``|quantity|`` shares in a name
    trading ``adv`` shares a day. No usable ADV: ``MOC`` (nothing to size a schedule by)."""
    if not (math.isfinite(adv) and adv > 0):
        return MOC
    participation = abs(quantity) / adv
    if participation >= params.ac_participation:
        return AC
    if participation >= params.algo_participation:
        return params.algo
    return MOC


def u_shaped_profile(bins: int, ends_over_middle: float = 3.0) -> np.ndarray:
    """Fraction of the session's volume in each of ``bins`` equal intervals: a parabola in
    time whose first and last intervals trade ``ends_over_middle`` times the middle's
    volume (busy open and close, quiet lunch). Sums to 1."""
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    if ends_over_middle < 1:
        raise ValueError(f"ends_over_middle must be at least 1, got {ends_over_middle}")
    mid = (np.arange(bins) + 0.5) / bins  # interval centres in [0, 1]
    edge = (1 / (2 * bins) - 0.5) ** 2  # squared distance of the end centres from 1/2
    curve = (ends_over_middle - 1) / edge if edge > 0 else 0.0
    w = 1.0 + curve * (mid - 0.5) ** 2
    return w / w.sum()


def profile_from_intraday(bars: pd.DataFrame, bins: int) -> np.ndarray:
    """The average share of a session's volume in each of ``bins`` equal intervals, from
    intraday bars ``timestamp, volume`` (any symbols; a bar is placed by its time within
    its session's first and last timestamps). Each session counts once; sessions without
    volume are skipped."""
    missing = {"timestamp", "volume"} - set(bars.columns)
    if missing:
        raise ValueError(f"intraday bars need columns {sorted(missing)}")
    ts = pd.to_datetime(bars["timestamp"])
    day = ts.dt.normalize()
    first = ts.groupby(day).transform("min")
    last = ts.groupby(day).transform("max")
    span = (last - first).dt.total_seconds()
    where = np.where(span > 0, (ts - first).dt.total_seconds() / span.where(span > 0, 1), 0.0)
    slot = np.minimum((where * bins).astype(int), bins - 1)
    volume = bars["volume"].to_numpy(dtype="float64")
    table = pd.DataFrame({"day": day.to_numpy(), "slot": slot, "volume": volume})
    per = table.pivot_table(index="day", columns="slot", values="volume", aggfunc="sum",
                            fill_value=0.0).reindex(columns=range(bins), fill_value=0.0)
    totals = per.sum(axis=1)
    per = per[totals > 0]
    if per.empty:
        raise ValueError("intraday bars carry no volume to estimate a profile from")
    shares = per.div(per.sum(axis=1), axis=0).mean(axis=0).to_numpy()
    return shares / shares.sum()


def twap_slices(quantity: float, bins: int) -> np.ndarray:
    """Equal shares in every interval."""
    return np.full(bins, quantity / bins)


def vwap_slices(quantity: float, profile: np.ndarray) -> np.ndarray:
    """Shares in proportion to each interval's expected volume."""
    return quantity * np.asarray(profile, dtype="float64")


def ac_kappa(risk_aversion: float, sigma: float, eta: float, tau: float) -> float:
    """Almgren–Chriss urgency ``κ`` of the discrete problem (no permanent impact):
    ``cosh(κτ) = 1 + λσ²τ² / (2η)``, with ``λ`` the risk aversion (per dollar), ``σ`` the
    price volatility ($ per share per √session), ``η`` the temporary impact ($ per share
    per share-per-session traded) and ``τ`` the interval (sessions). ``inf`` when trading
    costs nothing (``η = 0`` with risk to avoid), 0 without risk aversion or risk."""
    risk = risk_aversion * sigma**2
    if not (math.isfinite(risk) and risk > 0):
        return 0.0
    if not (math.isfinite(eta) and eta > 0):
        return math.inf
    return math.acosh(1 + risk * tau**2 / (2 * eta)) / tau


def ac_holdings(quantity: float, bins: int, kappa: float) -> np.ndarray:
    """Shares still to trade at ``t_j = j / bins`` (``j = 0 … bins``, session length 1):
    ``x_j = X sinh(κ(1 − t_j)) / sinh(κ)``; ``κ → 0`` is the straight line (TWAP), ``κ = ∞``
    trades everything in the first interval. Computed in a form that does not overflow."""
    t = np.arange(bins + 1) / bins
    if kappa == 0:
        return quantity * (1 - t)
    if math.isinf(kappa):
        return np.where(t == 0, quantity, 0.0)
    # sinh(κ(1−t))/sinh(κ) = e^{−κt} (1 − e^{−2κ(1−t)}) / (1 − e^{−2κ})
    return quantity * np.exp(-kappa * t) * (-np.expm1(-2 * kappa * (1 - t))) \
        / (-math.expm1(-2 * kappa))


def ac_slices(quantity: float, bins: int, kappa: float) -> np.ndarray:
    """Shares traded in each interval along the Almgren–Chriss trajectory."""
    x = ac_holdings(quantity, bins, kappa)
    return x[:-1] - x[1:]


def linear_impact_eta(costs: CostModel, quantity: float, price: float, daily_vol: float,
                      adv: float) -> float:
    """The linear temporary impact ``η`` that charges a uniform one-session execution of
    ``quantity`` what the cost model's square-root impact charges it (``η X² = impact``):
    the trajectory's shape comes from the linear model, its cost from the cost model."""
    q = abs(quantity)
    if q == 0:
        return 0.0
    return float(costs.impacts(q, price, daily_vol, adv)) / q**2


def intraday_path(open_: float, high: float, low: float, close: float, steps: int,
                  rng: np.random.Generator) -> np.ndarray:
    """``steps + 1`` prices from the open to the close: a Brownian bridge whose excursions
    above the open→close line are scaled to touch the high and those below to touch the low
    (see the module's note). The range is widened to contain the open and close."""
    high, low = max(high, open_, close), min(low, open_, close)
    t = np.linspace(0.0, 1.0, steps + 1)
    walk = np.concatenate([[0.0], np.cumsum(rng.standard_normal(steps))])
    bridge = walk - t * walk[-1]
    line = open_ + (close - open_) * t
    up, down = np.maximum(bridge, 0.0), np.maximum(-bridge, 0.0)
    a = np.min((high - line[up > 0]) / up[up > 0]) if (up > 0).any() else 0.0
    b = np.min((line[down > 0] - low) / down[down > 0]) if (down > 0).any() else 0.0
    path = line + max(a, 0.0) * up - max(b, 0.0) * down
    path[0], path[-1] = open_, close
    return path


def interval_prices(path: np.ndarray, bins: int) -> np.ndarray:
    """Mean price over each of ``bins`` equal intervals of a path of ``bins × m + 1``
    points (both ends of an interval included)."""
    m = (len(path) - 1) // bins
    if m * bins != len(path) - 1 or m < 1:
        raise ValueError(f"a path of {len(path)} points does not split into {bins} intervals")
    idx = np.arange(bins)[:, None] * m + np.arange(m + 1)[None, :]
    return path[idx].mean(axis=1)


def path_rng(seed: int, symbol: str, day: dt.date) -> np.random.Generator:
    """The generator of one name's path on one day: the same (seed, symbol, day), the same
    path, in every process."""
    return np.random.default_rng([seed, zlib.crc32(symbol.encode()), day.toordinal()])


@dataclass(frozen=True)
class Bar:
    """The fill day's bar as the schedules read it (``nan`` where the data lack a field)."""

    open: float
    high: float
    low: float
    close: float

    @property
    def has_range(self) -> bool:
        return all(math.isfinite(v) and v > 0 for v in (self.open, self.high, self.low))


def start_price(style: str, bar: Bar) -> float:
    """The price when the broker began working an order of ``style``: the close for
    ``MOC``, the open for a schedule (the close when the data have no open)."""
    if style in SCHEDULED and bar.has_range:
        return bar.open
    return bar.close


@dataclass(frozen=True, eq=False)
class Schedules:
    """How the paper broker works a scheduled order (``broker.execution`` in params)."""

    bins: int = 13
    steps_per_bin: int = 10
    risk_aversion: float = 1e-6
    seed: int = 0
    profile: np.ndarray = field(default_factory=lambda: u_shaped_profile(13))

    def __post_init__(self) -> None:
        profile = np.asarray(self.profile, dtype="float64")
        if len(profile) != self.bins or not np.isclose(profile.sum(), 1.0) \
                or (profile <= 0).any():
            raise ValueError(f"the volume profile must have {self.bins} positive shares "
                             "summing to 1")

    @classmethod
    def from_params(cls, p: ExecutionParams, profile: np.ndarray | None = None) -> Schedules:
        """``profile``: one estimated from intraday bars; the U-shaped default without."""
        return cls(bins=p.bins, steps_per_bin=p.steps_per_bin, risk_aversion=p.risk_aversion,
                   seed=p.seed, profile=(u_shaped_profile(p.bins, p.profile_ends_over_middle)
                                         if profile is None else profile))


@dataclass(frozen=True, eq=False)
class ScheduleFill:
    """A worked order: shares and mean price per interval, the average fill, the price when
    work began, and its costs split into half spread and impact (dollars)."""

    style: str
    slices: np.ndarray
    prices: np.ndarray
    price: float
    start_price: float
    spread: float
    impact: float

    @property
    def slippage(self) -> float:
        return self.spread + self.impact


def schedule_slices(style: str, quantity: float, schedules: Schedules, costs: CostModel,
                    price: float, daily_vol: float, adv: float) -> np.ndarray:
    """Unsigned shares per interval for a scheduled style."""
    q = abs(quantity)
    if style == TWAP:
        return twap_slices(q, schedules.bins)
    if style == VWAP:
        return vwap_slices(q, schedules.profile)
    if style == AC:
        sigma = daily_vol * price if math.isfinite(daily_vol) else 0.0
        eta = linear_impact_eta(costs, q, price, daily_vol, adv)
        kappa = ac_kappa(schedules.risk_aversion, sigma, eta, 1 / schedules.bins)
        return ac_slices(q, schedules.bins, kappa)
    raise ValueError(f"unknown scheduled style {style!r} (one of {', '.join(SCHEDULED)})")


def schedule_fill(style: str, quantity: float, bar: Bar, daily_vol: float, adv: float,
                  costs: CostModel, schedules: Schedules, symbol: str, day: dt.date,
                  decision_price: float) -> ScheduleFill:
    """Work ``quantity`` shares in ``style`` over ``day``'s session: slices sized by the
    style (Almgren–Chriss calibrated at ``decision_price``, as the order was sent), executed
    at the bar's seeded intraday path, charged by the cost model slice by slice."""
    slices = schedule_slices(style, quantity, schedules, costs, decision_price, daily_vol, adv)
    if bar.has_range:
        path = intraday_path(bar.open, bar.high, bar.low, bar.close,
                             schedules.bins * schedules.steps_per_bin,
                             path_rng(schedules.seed, symbol, day))
        prices = interval_prices(path, schedules.bins)
    else:
        prices = np.full(schedules.bins, bar.close)
    start = start_price(style, bar)
    q = slices.sum()
    price = float(slices @ prices / q) if q > 0 else bar.close
    spread = float(costs.half_spreads(slices, prices).sum())
    impact = float(costs.impacts(slices, prices, daily_vol, adv * schedules.profile).sum())
    return ScheduleFill(style, slices, prices, price, start, spread, impact)
