"""Drift of live features and scores against the reference captured at training time.

Two statistics per column: the Population Stability Index and a Kolmogorov–Smirnov
distance measured on the reference's quantile bins, with a p-value. With 25 to 210 features,
a PSI rule on any one of them fires on ordinary days; so a column drifts only when both
statistics agree after a Benjamini–Hochberg control of the false discovery rate across the
columns, and the drift check acts on a share of features, not on one.

A column whose recent values are all missing or constant (while its reference was not) is
dead, which is drift in its own right: its PSI is undefined, and ``NaN > threshold`` would
never fire.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

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


def _shares(reference: dict, v: np.ndarray) -> np.ndarray:
    edges = np.asarray(reference["edges"])
    counts = np.bincount(np.searchsorted(edges, v, side="right"), minlength=len(edges) + 1)
    return counts / counts.sum()


def _finite(values: pd.Series | np.ndarray) -> np.ndarray:
    v = np.asarray(values, dtype="float64")
    return v[np.isfinite(v)]


def psi(reference: dict, values: pd.Series | np.ndarray) -> float:
    """PSI = sum((a - e) * ln(a / e)); ~0 stable, > 0.25 a shift worth acting on."""
    v = _finite(values)
    if len(v) == 0:
        return float("nan")
    expected = np.clip(np.asarray(reference["proportions"]), _EPS, None)
    actual = np.clip(_shares(reference, v), _EPS, None)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def ks_binned(reference: dict, values: pd.Series | np.ndarray,
              effective_n: int | None = None) -> tuple[float, float]:
    """KS distance between the two CDFs at the reference's bin edges, and its p-value.

    The binned distance is at most the exact one, so the test errs on the quiet side. The
    p-value uses ``effective_n`` draws (default: the number of values): a feature's values on
    consecutive days of one symbol are far from independent, so the drift check passes the
    number of symbols, not rows.
    """
    v = _finite(values)
    if len(v) == 0:
        return float("nan"), float("nan")
    ref_cdf = np.cumsum(reference["proportions"])[:-1]
    cdf = np.cumsum(_shares(reference, v))[:-1]
    d = float(np.max(np.abs(cdf - ref_cdf))) if len(cdf) else 0.0
    n = max(1, int(effective_n or len(v)))
    return d, float(stats.kstwo.sf(d, n))


def is_dead(reference: dict, values: pd.Series | np.ndarray) -> bool:
    """All values missing, or one value repeated, where the reference had a spread."""
    v = _finite(values)
    if sum(share > 0 for share in reference["proportions"]) < 2:  # constant in training too
        return len(v) == 0
    return len(v) == 0 or bool(np.ptp(v) == 0)


def benjamini_hochberg(p_values: np.ndarray, fdr: float) -> np.ndarray:
    """Which hypotheses to reject at false discovery rate ``fdr`` (NaN p-values never)."""
    p = np.asarray(p_values, dtype="float64")
    out = np.zeros(len(p), dtype=bool)
    ok = np.flatnonzero(np.isfinite(p))
    if len(ok) == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    m = len(ok)
    below = p[order] <= fdr * np.arange(1, m + 1) / m
    if below.any():
        out[order[: np.flatnonzero(below)[-1] + 1]] = True
    return out


def drift_table(reference: dict[str, dict], recent: pd.DataFrame,
                effective_n: int | None = None, psi_threshold: float = np.inf,
                fdr: float = 0.0) -> pd.DataFrame:
    """Per column of ``recent`` with a reference: ``psi, ks, p_value, dead, drifted``.

    ``drifted``: dead, or PSI above ``psi_threshold`` and the KS test rejected under the
    Benjamini–Hochberg control at ``fdr`` across all columns. Dead columns first, then by
    PSI, largest first.
    """
    rows = []
    for c in recent.columns:
        if c not in reference:
            continue
        d, p = ks_binned(reference[c], recent[c], effective_n)
        rows.append({"name": c, "psi": psi(reference[c], recent[c]), "ks": d, "p_value": p,
                     "dead": is_dead(reference[c], recent[c])})
    table = pd.DataFrame(rows, columns=["name", "psi", "ks", "p_value", "dead"])
    rejected = benjamini_hochberg(table["p_value"].to_numpy(), fdr)
    table["drifted"] = table["dead"].astype(bool) | (
        rejected & (table["psi"].to_numpy(dtype="float64") > psi_threshold))
    return table.sort_values(["dead", "psi"], ascending=[False, False], ignore_index=True,
                             na_position="last")


def controlled_drift(table: pd.DataFrame, score: dict | None, psi_threshold: float,
                     ks_fdr: float, min_share: float) -> list[str]:
    """Drift that passes the controls, one sentence each: dead features; at least
    ``min_share`` of the features drifted (:func:`drift_table`); the score over both tests
    (its p-value held to the same false discovery rate). Empty: nothing to act on."""
    out = []
    dead = table.loc[table["dead"], "name"].tolist()
    if dead:
        out.append(f"dead features (all missing or constant): {', '.join(dead)}")
    drifted = table.loc[table["drifted"] & ~table["dead"], "name"].tolist()
    share = len(drifted) / len(table) if len(table) else 0.0
    if drifted and share >= min_share:
        out.append(f"drift in {len(drifted)} of {len(table)} features ({share:.0%} ≥ "
                   f"{min_share:.0%}): {', '.join(drifted[:10])}")
    s = score
    if s is not None and (s["dead"] or (s["psi"] > psi_threshold and s["p_value"] <= ks_fdr)):
        out.append("score is constant" if s["dead"] else
                   f"score drift: PSI {s['psi']:.3f}, KS {s['ks']:.3f} (p {s['p_value']:.2g})")
    return out
