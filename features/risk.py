"""Risk features: GARCH(1,1) volatility forecast, historical VaR/CVaR, beta and correlation
to a benchmark.

GARCH is refit every ``refit_every`` sessions on the returns up to that session only, and
filtered day by day with the last fitted parameters in between: never a fit per row, and
never a parameter estimated with data after the day it is used. The fits of all symbols
run in one compiled call (``features.garch``), on ``arch``'s likelihood.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from arch import arch_model

from alphaline.errors import ConfigError
from alphaline.features import garch
from alphaline.features.rolling import Moments, window_sum

Wide = pd.DataFrame
GARCH_MIN_OBS = 250
MAX_PERSISTENCE = 0.999
GARCH_HISTORY = 1000  # sessions of returns each refit reads


def _fit(returns: np.ndarray, start: tuple[float, float, float] | None = None
         ) -> tuple[float, float, float] | None:
    """(omega, alpha, beta) of a zero-mean GARCH(1,1) on percent returns by ``arch``, or
    None: one series at a time, the reference ``features.garch`` is checked against.

    ``start``: the previous fit's parameters, a warm start that cuts the cost ~3x.
    """
    r = returns[np.isfinite(returns)]
    if len(r) < GARCH_MIN_OBS:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = arch_model(r, mean="Zero", vol="GARCH", p=1, q=1, rescale=False).fit(
            disp="off", show_warning=False,
            starting_values=None if start is None else np.asarray(start))
    omega, alpha, beta = (float(res.params[k]) for k in ("omega", "alpha[1]", "beta[1]"))
    # A fit at the unit-root boundary (IGARCH) gives no usable forecast, and whether it
    # lands just below 1 depends on the last bits of the arithmetic: refuse it clearly.
    if not np.isfinite([omega, alpha, beta]).all() or alpha + beta > MAX_PERSISTENCE:
        return None
    return omega, alpha, beta


@dataclass
class GarchState:
    """What the filter carries from one session to the next: each symbol's parameters of its
    last refit (NaN: never fitted) and its variance after ``session`` (percent², NaN: none).
    ``session`` counts sessions from the history's first (0), the origin of the refit
    schedule."""

    session: int
    symbols: pd.Index
    params: np.ndarray
    var: np.ndarray

    def on(self, symbols: pd.Index) -> GarchState:
        """The same state over ``symbols`` (a symbol new to it: never fitted)."""
        pos = self.symbols.get_indexer(symbols)
        params = np.full((len(symbols), 3), np.nan)
        var = np.full(len(symbols), np.nan)
        have = pos >= 0
        params[have], var[have] = self.params[pos[have]], self.var[pos[have]]
        return GarchState(self.session, pd.Index(symbols), params, var)


def garch_run(close: Wide, refit_every: int, history: int = GARCH_HISTORY,
              state: GarchState | None = None, new: int = 1) -> tuple[Wide, GarchState]:
    """Next-day volatility forecasts (daily, fraction) known at each close, and the state
    after the last row.

    ``state=None``: ``close`` is the whole history (its first row is session 0). Otherwise
    ``close`` ends with the ``new`` sessions after ``state.session`` and carries, before
    them, the sessions a refit among them reads (up to ``history``): only the ``new`` rows
    are filtered (the others are NaN), the refit schedule counted from the same origin, so
    the values are the whole history's.
    At each refit every symbol with enough returns is fitted in one call
    (``features.garch.fit``, ``arch``'s likelihood, warm-started from its last fit), then
    the filter runs day by day for all symbols at once.
    """
    r = 100 * np.log(close / close.shift(1))
    values = r.to_numpy(dtype="float64", copy=True)
    values[~np.isfinite(values)] = np.nan  # ±inf is missing: it would poison the filter
    sessions, symbols = values.shape
    out = np.full(values.shape, np.nan)
    if state is None:
        first, origin = 0, 0
        params = np.full((symbols, 3), np.nan)
        var = np.full(symbols, np.nan)
    else:
        state = state.on(close.columns)
        params, var = state.params.copy(), state.var.copy()
        first = sessions - new
        origin = state.session + 1 - first
    for i in range(first, sessions):
        t = origin + i
        refit = np.zeros(symbols, dtype=bool)
        if t % refit_every == 0 and t + 1 >= GARCH_MIN_OBS:
            if i < t and i < history:  # the window's first return needs the close before it
                raise ValueError(f"the GARCH refit at session {t} reads {history} returns: "
                                 f"give {history + 1} sessions of closes, not {i + 1}")
            seen = values[max(0, i + 1 - history): i + 1]
            finite = np.isfinite(seen)
            cols = np.flatnonzero(finite.sum(axis=0) >= GARCH_MIN_OBS)
            fitted, _ = garch.fit(seen[:, cols].T, start=params[cols])
            # A fit at the unit-root boundary (IGARCH) gives no usable forecast, and whether
            # it lands just below 1 depends on the last bits of the arithmetic: refuse it.
            ok = np.isfinite(fitted).all(axis=1) & (fitted[:, 1] + fitted[:, 2]
                                                    <= MAX_PERSISTENCE)
            cols, fitted = cols[ok], fitted[ok]
            params[cols] = fitted
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                v = np.nanvar(seen[:, cols], axis=0)  # restart at the sample variance
            for x, m in zip(seen[:, cols], finite[:, cols], strict=True):
                v = np.where(m, fitted[:, 0] + fitted[:, 1] * x * x + fitted[:, 2] * v, v)
            var[cols] = v
            out[i, cols] = np.sqrt(v) / 100
            refit[cols] = True
        x = values[i]
        step = ~refit & np.isfinite(params[:, 0]) & np.isfinite(x)
        with np.errstate(invalid="ignore"):
            var = np.where(step, params[:, 0] + params[:, 1] * x * x + params[:, 2] * var, var)
        out[i, step] = np.sqrt(var[step]) / 100
    end = GarchState(origin + sessions - 1, pd.Index(close.columns), params, var)
    return pd.DataFrame(out, index=close.index, columns=close.columns), end


def garch_forecast(close: Wide, refit_every: int, history: int = GARCH_HISTORY) -> Wide:
    """Next-day volatility forecast over the whole history in ``close`` (``garch_run``)."""
    return garch_run(close, refit_every, history)[0]


def historical_var(returns: Wide, window: int, level: float) -> Wide:
    """Loss not exceeded with probability ``level`` (positive number), from the window."""
    return -returns.rolling(window, min_periods=window).quantile(1 - level)


def historical_cvar(returns: Wide, window: int, level: float) -> Wide:
    """Mean loss beyond the VaR in the window."""
    threshold = returns.rolling(window, min_periods=window).quantile(1 - level)
    values, cut = returns.to_numpy(), threshold.to_numpy()
    out = np.full(values.shape, np.nan)
    for t in range(window - 1, len(values)):
        block = values[t - window + 1: t + 1]
        tail = np.where(block <= cut[t], block, np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            out[t] = -np.nanmean(tail, axis=0)
    return pd.DataFrame(out, index=returns.index, columns=returns.columns)


def beta_and_correlation(returns: Wide, benchmark: pd.Series, window: int) -> tuple[Wide, Wide]:
    """Rolling OLS beta and correlation of each symbol's returns on the benchmark's."""
    b = np.broadcast_to(benchmark.to_numpy()[:, None], returns.shape).T.copy()
    a = returns.to_numpy().T.copy()
    both = ~np.isnan(a) & ~np.isnan(b)
    a, b = np.where(both, a, np.nan), np.where(both, b, np.nan)
    ma, mb = Moments(a, window), Moments(b, window)
    with np.errstate(invalid="ignore", divide="ignore"):
        cov = window_sum(ma.xc * mb.xc, window) - ma.s1 * mb.s1 / ma.n
        var_a = ma.s2 - ma.s1**2 / ma.n
        var_b = mb.s2 - mb.s1**2 / mb.n
        beta = np.where(ma.n >= window, cov / var_b, np.nan)
        corr = np.where(ma.n >= window, cov / np.sqrt(var_a * var_b), np.nan)
    return (pd.DataFrame(beta.T, index=returns.index, columns=returns.columns),
            pd.DataFrame(corr.T, index=returns.index, columns=returns.columns))


def benchmark_returns(returns: Wide, symbol: str | None = None) -> pd.Series:
    """A symbol's returns, or the equal-weight market's (mean across symbols each day)."""
    if symbol is None:
        return returns.mean(axis=1)
    if symbol not in returns.columns:
        raise ConfigError(f"features.benchmark: symbol {symbol!r} is not in the data")
    return returns[symbol]


def risk(p: dict[str, Wide], *, garch_refit_every: int, benchmark: pd.Series | None = None,
         wanted: set[str] | None = None):
    """Yield ``(name, wide)`` for the risk set.

    ``benchmark``: daily log returns of the benchmark, computed from the whole universe by
    the caller (so that symbol chunks see the same market); default: the equal-weight
    market of the symbols in ``p``. ``wanted``: names the caller keeps (GARCH is skipped
    when it is not among them).
    """
    c = p["close"]
    r = np.log(c / c.shift(1))
    if wanted is None or "garch_vol" in wanted:  # per-symbol fits: only when asked for
        yield "garch_vol", garch_forecast(c, garch_refit_every)
    yield "var_95_60", historical_var(r, 60, 0.95)
    yield "var_99_60", historical_var(r, 60, 0.99)
    yield "cvar_95_60", historical_cvar(r, 60, 0.95)
    bench = benchmark_returns(r) if benchmark is None else benchmark.reindex(r.index)
    beta, corr = beta_and_correlation(r, bench, 60)
    yield "beta_60", beta
    yield "corr_60", corr


RISK = {
    "garch_vol": (("close",), GARCH_MIN_OBS,
                  "GARCH(1,1) next-day volatility forecast, refit on a schedule"),
    "var_95_60": (("close",), 61, "historical 95 % one-day VaR over 60 days (loss, positive)"),
    "var_99_60": (("close",), 61, "historical 99 % one-day VaR over 60 days (loss, positive)"),
    "cvar_95_60": (("close",), 61, "mean loss beyond the 95 % VaR over 60 days"),
    "beta_60": (("close",), 61, "60-day beta to the benchmark (equal-weight market)"),
    "corr_60": (("close",), 61, "60-day correlation to the benchmark (equal-weight market)"),
}
