"""Population Stability Index against a reference captured at training time."""

from __future__ import annotations

import numpy as np
import pandas as pd

_EPS = 1e-4


def reference_bins(values: pd.Series | np.ndarray, n_bins: int) -> dict:
    """Decile edges of the reference and the share of it in each bin."""
    v = np.asarray(values, dtype="float64")
    v = v[np.isfinite(v)]
    if len(v) == 0:
        raise ValueError("reference has no finite values")
    edges = np.unique(np.quantile(v, np.linspace(0, 1, n_bins + 1)[1:-1]))
    counts = np.bincount(np.searchsorted(edges, v, side="right"), minlength=len(edges) + 1)
    return {"edges": edges.tolist(), "proportions": (counts / counts.sum()).tolist()}


def psi(reference: dict, values: pd.Series | np.ndarray) -> float:
    """PSI = sum((a - e) * ln(a / e)); ~0 stable, > 0.25 a shift worth acting on."""
    v = np.asarray(values, dtype="float64")
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return float("nan")
    edges = np.asarray(reference["edges"])
    expected = np.clip(np.asarray(reference["proportions"]), _EPS, None)
    counts = np.bincount(np.searchsorted(edges, v, side="right"), minlength=len(edges) + 1)
    actual = np.clip(counts / counts.sum(), _EPS, None)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def drift_table(reference: dict[str, dict], recent: pd.DataFrame) -> pd.DataFrame:
    """PSI for every column of ``recent`` that has a reference, largest first."""
    rows = [{"name": c, "psi": psi(reference[c], recent[c])}
            for c in recent.columns if c in reference]
    return pd.DataFrame(rows).sort_values("psi", ascending=False, ignore_index=True)
