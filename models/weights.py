"""Sample weights for overlapping labels: uniqueness (López de Prado, ch. 4) and time decay.

A row at session ``j`` has the label ``close[j+1+h] / close[j+1] - 1``: it is made of the
``h`` daily returns of sessions ``j+2 .. j+1+h``. Rows of one symbol whose spans share
returns are not independent draws; weighting each by its average uniqueness keeps a
stretch of history from counting ``h`` times.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def label_uniqueness(dates: pd.Series, symbols: pd.Series, horizon: int) -> np.ndarray:
    """Average of ``1 / concurrency`` over each row's return span, per symbol.

    Concurrency of a (symbol, session) is how many of that symbol's labels use the return
    of that session. With every label present and ``h`` returns per label it is ``h`` in
    the interior, so uniqueness is ``1/h`` there (and 1 for ``h = 1``).
    """
    values = pd.to_datetime(pd.Series(dates)).to_numpy()
    unique = np.unique(values)
    pos = np.searchsorted(unique, values)
    sym_codes, _ = pd.factorize(pd.Series(symbols).to_numpy())
    n_sessions = len(unique) + horizon + 2
    grid = np.zeros((sym_codes.max() + 1, n_sessions + 1))
    first, last = pos + 2, pos + 1 + horizon  # return sessions the label spans, inclusive
    np.add.at(grid, (sym_codes, first), 1.0)
    np.add.at(grid, (sym_codes, last + 1), -1.0)
    concurrency = np.cumsum(grid, axis=1)[:, :n_sessions]
    inverse = np.divide(1.0, concurrency, out=np.zeros_like(concurrency), where=concurrency > 0)
    cumulative = np.concatenate([np.zeros((inverse.shape[0], 1)), np.cumsum(inverse, axis=1)],
                                axis=1)
    total = cumulative[sym_codes, last + 1] - cumulative[sym_codes, first]
    return total / horizon


def time_decay(dates: pd.Series, half_life_days: float | None) -> np.ndarray:
    """``0.5 ** (age / half_life)``, age in sessions before the newest row; 1 when off."""
    values = pd.to_datetime(pd.Series(dates)).to_numpy()
    if half_life_days is None:
        return np.ones(len(values))
    unique = np.unique(values)
    age = len(unique) - 1 - np.searchsorted(unique, values)
    return 0.5 ** (age / half_life_days)


def sample_weights(dates: pd.Series, symbols: pd.Series, horizon: int, *, uniqueness: bool,
                   half_life_days: float | None) -> np.ndarray:
    """Uniqueness × decay, scaled to mean 1 so that learning rates keep their meaning."""
    w = time_decay(dates, half_life_days)
    if uniqueness:
        w = w * label_uniqueness(dates, symbols, horizon)
    mean = w.mean() if len(w) else 1.0
    return w / mean if mean > 0 else np.ones(len(w))
