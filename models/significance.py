"""Is the challenger's edge over the champion more than luck? A paired test on the same days.

The after-cost daily returns of both models on the same CPCV paths are differenced day by
day (averaged over the paths first: the paths share their days); the stationary bootstrap
(Politis & Romano, mean block length by Politis & White) resamples that difference series
with its autocorrelation, under the null of no edge (the series re-centred on zero). The
p-value is the share of resampled means at least as large as the observed one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from arch.bootstrap import StationaryBootstrap, optimal_block_length


@dataclass(frozen=True)
class PairedTest:
    mean_difference: float  # per session, after costs
    p_value: float  # one-sided: H0 the challenger earns no more than the champion
    block_length: float
    draws: int
    sessions: int


def paired_bootstrap(challenger: pd.Series, champion: pd.Series, *, draws: int, seed: int
                     ) -> PairedTest:
    """One-sided paired stationary-bootstrap test of ``mean(challenger − champion) > 0``
    over the sessions both have."""
    both = pd.concat([challenger, champion], axis=1, join="inner").dropna()
    d = (both.iloc[:, 0] - both.iloc[:, 1]).to_numpy(dtype="float64")
    observed = float(d.mean()) if len(d) else 0.0
    if len(d) < 10 or not np.isfinite(d).all() or d.std() == 0:
        return PairedTest(observed, 1.0 if observed <= 0 else 0.5, float("nan"), 0, len(d))
    block = float(optimal_block_length(d)["stationary"].iloc[0])
    block = min(max(block, 1.0), len(d) / 2)
    bs = StationaryBootstrap(block, d - observed, seed=np.random.default_rng(seed))
    means = bs.apply(lambda x: x.mean(keepdims=True), draws).ravel()
    p = float((1 + np.sum(means >= observed)) / (draws + 1))
    return PairedTest(observed, p, block, draws, len(d))
