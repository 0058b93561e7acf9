"""The one registry of feature definitions, grouped in sets chosen by ``features.sets``.

It feeds the computation (``features.compute``), the Feast schema (``features.store``),
the docs page (``alphaline features``) and the labels shown beside SHAP values.

A definition is computed either by its own ``compute`` function, or by its ``family``: a
function that yields many features at once because they share intermediate work.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from alphaline.errors import ConfigError
from alphaline.features import alpha158, core
from alphaline.features.liquidity import LIQUIDITY, liquidity
from alphaline.features.risk import RISK, risk
from alphaline.features.technical import TECHNICAL, technical

Panel = dict[str, pd.DataFrame]  # "open" | "high" | "low" | "close" | "volume" -> wide frame
# A family yields (name, wide frame); ``wanted`` lets it skip work nobody asked for.
Family = Callable[..., Iterable[tuple[str, pd.DataFrame]]]


@dataclass(frozen=True)
class FeatureDef:
    name: str
    inputs: tuple[str, ...]
    window: int  # sessions of history before the value is complete
    description: str
    feature_set: str
    compute: Callable[[Panel], pd.DataFrame] | None = None
    family: str | None = None


FAMILIES: dict[str, Family] = {
    "alpha158": alpha158.alpha158,
    "technical": technical,
    "risk": risk,
    "liquidity": liquidity,
}
SETS = ("core", "alpha158", "technical", "risk", "liquidity")


def _core() -> list[FeatureDef]:
    out: list[FeatureDef] = []

    def add(name, inputs, window, description, fn):
        out.append(FeatureDef(name, tuple(inputs), window, description, "core", compute=fn))

    for w in (1, 5, 10, 20, 60):
        add(f"ret_{w}", ["close"], w, f"log return over {w} day(s)",
            lambda p, w=w: core.log_return(p["close"], w))
    for w in (5, 20, 60):
        add(f"vol_{w}", ["close"], w, f"realized volatility of daily log returns over {w} days",
            lambda p, w=w: core.realized_vol(p["close"], w))
    add("rsi_14", ["close"], 14, "Wilder RSI over 14 days, in [0, 1]",
        lambda p: core.rsi(p["close"], 14))
    add("macd", ["close"], 26, "MACD line (EMA12 - EMA26) over the close",
        lambda p: core.macd(p["close"])[0])
    add("macd_signal", ["close"], 35, "9-day EMA of the MACD line",
        lambda p: core.macd(p["close"])[1])
    add("macd_hist", ["close"], 35, "MACD line minus its signal",
        lambda p: core.macd(p["close"])[2])
    add("bb_pos_20", ["close"], 20, "position within 20-day Bollinger bands (-1 lower, +1 upper)",
        lambda p: core.bollinger(p["close"], 20)[0])
    add("bb_width_20", ["close"], 20, "20-day Bollinger band width over the mean",
        lambda p: core.bollinger(p["close"], 20)[1])
    add("atr_14", ["high", "low", "close"], 14, "14-day average true range over the close",
        lambda p: core.atr(p["high"], p["low"], p["close"], 14))
    add("volume_z_20", ["volume"], 20, "z-score of log volume against its 20-day mean",
        lambda p: core.volume_z(p["volume"], 20))
    add("dollar_volume_20", ["close", "volume"], 20, "log of 20-day mean dollar volume",
        lambda p: core.log_dollar_volume(p["close"], p["volume"], 20))
    add("hl_range", ["high", "low"], 1, "log of the day's high over low",
        lambda p: np.log(p["high"] / p["low"]))
    add("gap", ["open", "close"], 1, "log of the open over the previous close",
        lambda p: np.log(p["open"] / p["close"].shift(1)))
    add("close_to_high_20", ["close", "high"], 20, "close over the 20-day highest high, minus 1",
        lambda p: core.range_position(p["close"], p["high"], p["low"], 20)[0])
    add("close_to_low_20", ["close", "low"], 20, "close over the 20-day lowest low, minus 1",
        lambda p: core.range_position(p["close"], p["high"], p["low"], 20)[1])
    add("ma_ratio_5_20", ["close"], 20, "5-day over 20-day simple moving average, minus 1",
        lambda p: core.ma_ratio(p["close"], 5, 20))
    add("ma_ratio_20_60", ["close"], 60, "20-day over 60-day simple moving average, minus 1",
        lambda p: core.ma_ratio(p["close"], 20, 60))
    add("skew_20", ["close"], 20, "skewness of daily log returns over 20 days",
        lambda p: core.return_skew(p["close"], 20))
    add("ret1_x_volume_z", ["close", "volume"], 20,
        "one-day log return times the volume z-score (volume-confirmed moves)",
        lambda p: core.log_return(p["close"], 1) * core.volume_z(p["volume"], 20))
    return out


def _family(name: str, specs: dict[str, tuple[tuple[str, ...], int, str]]) -> list[FeatureDef]:
    return [FeatureDef(n, inputs, window, description, name, family=name)
            for n, (inputs, window, description) in specs.items()]


def _alpha158() -> list[FeatureDef]:
    out = []
    for n in alpha158.names():
        if n in alpha158.KBAR:
            inputs, window, description = ("open", "high", "low", "close"), 1, alpha158.KBAR[n]
        elif n in alpha158.PRICE:
            inputs, window, description = ("open", "high", "low", "close"), 1, alpha158.PRICE[n]
        else:
            op, d = n.rstrip("0123456789"), int(n[len(n.rstrip("0123456789")):])
            cols, text = alpha158.ROLLING[op]
            inputs, window, description = tuple(cols.split(",")), d, text.replace(" d ", f" {d} ")
        out.append(FeatureDef(n, inputs, window, description, "alpha158", family="alpha158"))
    return out


FEATURES: tuple[FeatureDef, ...] = (
    *_core(), *_alpha158(), *_family("technical", TECHNICAL), *_family("risk", RISK),
    *_family("liquidity", LIQUIDITY),
)
BY_NAME: dict[str, FeatureDef] = {f.name: f for f in FEATURES}
if len(BY_NAME) != len(FEATURES):
    raise RuntimeError("feature names must be unique across sets")
DEFAULT_SETS = ("core",)


def feature_names(sets: Iterable[str] = DEFAULT_SETS) -> list[str]:
    """Names of the features in ``sets``, in registry order."""
    chosen = set(sets)
    unknown = chosen - set(SETS)
    if unknown:
        raise ConfigError(f"unknown feature sets {sorted(unknown)}; known: {list(SETS)}")
    return [f.name for f in FEATURES if f.feature_set in chosen]


def missing_inputs(names: Iterable[str], available: Iterable[str]) -> dict[str, list[str]]:
    """Each feature in ``names`` whose inputs are not all ``available``, with those it lacks."""
    have = set(available)
    return {d.name: [c for c in d.inputs if c not in have] for d in get(list(names))
            if not set(d.inputs) <= have}


def check_inputs(names: Iterable[str], available: Iterable[str], where: str) -> None:
    """Refuse at start (ConfigError) selected features whose inputs the data lack, listing
    them: a feature of a column that is not there would be all-NaN, not an error."""
    lacking = missing_inputs(names, available)
    if not lacking:
        return
    by_column: dict[str, list[str]] = {}
    for name, cols in lacking.items():
        for col in cols:
            by_column.setdefault(col, []).append(name)
    lines = [f"  {col}: needed by {', '.join(feats)}" for col, feats in sorted(by_column.items())]
    raise ConfigError(
        f"features.sets selects {len(lacking)} feature(s) whose inputs the data from {where} "
        f"lack (the data carry: {', '.join(sorted(set(available))) or 'nothing'}):\n"
        + "\n".join(lines)
        + "\nchoose sets whose features the data can feed (`alphaline features` lists each "
        "feature's inputs) or add the missing columns")


def get(names: list[str] | None = None) -> list[FeatureDef]:
    if names is None:
        return [BY_NAME[n] for n in feature_names()]
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        raise ConfigError(f"unknown features {unknown}; known: {sorted(BY_NAME)}")
    return [BY_NAME[n] for n in names]


# Exponentially weighted features: a value n sessions back still weighs (1 - alpha)^n, so
# their memory is the history, not the declared window. The smoothing constant of the
# slowest average each one reads (Wilder's 1/n, or 2/(span + 1)).
RECURSIVE_ALPHA: dict[str, float] = {
    "rsi_14": 1 / 14, "atr_14": 1 / 14, "macd": 2 / 27, "macd_signal": 2 / 27,
    "macd_hist": 2 / 27, "ema_ratio_12": 2 / 13, "ema_ratio_26": 2 / 27,
    "detrended_price_20": 1 / 20,
}
# What a recursive feature may still owe its forgotten start, relative to that start's
# error: far below a float32 table's resolution (6e-8).
MEMORY_TOLERANCE = 1e-9
# Filtered from its own state (``features.risk.garch_run``), refit on its own window.
STATEFUL = ("garch_vol",)


def memory(d: FeatureDef, tolerance: float = MEMORY_TOLERANCE) -> int:
    """Sessions of bars the value of ``d`` at a day reads: its window, and for an
    exponentially weighted feature the sessions after which the weight of everything
    earlier falls under ``tolerance``."""
    alpha = RECURSIVE_ALPHA.get(d.name)
    if alpha is None:
        return d.window
    return d.window + math.ceil(math.log(tolerance) / math.log(1 - alpha))


def lookback(sets: Iterable[str], tolerance: float = MEMORY_TOLERANCE) -> int:
    """The sessions of bars (the day included) from which one day's features of ``sets``
    are the whole history's: the longest ``memory`` of their features, GARCH aside (it is
    filtered forward from its state and refit on ``risk.GARCH_HISTORY`` sessions). The
    benchmark of beta/correlation is a per-date mean over the same bars; per-date
    (cross-sectional) transforms read no other day."""
    return max(memory(d, tolerance) for d in get(feature_names(sets))
               if d.name not in STATEFUL)
