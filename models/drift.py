"""Drift of live features and scores against the reference captured at training time.

Two statistics per column: the Population Stability Index and a Kolmogorov–Smirnov
distance measured on the reference's quantile bins, with a p-value. With 25 to 210 features,
a PSI rule on any one of them fires on ordinary days; so a column drifts only when both
statistics agree after a Benjamini–Hochberg control of the false discovery rate across the
columns, and the drift check acts on a share of features, not on one.

Market-wide moves shift a whole cross-section at once (a rally moves every name's 60-day
return), and a feature's consecutive days are nearly the same draw: tested on raw values, a
new market regime looks like drift in half the features at once, on ordinary days. So the
test that can start a retrain runs on each day's cross-section, robustly standardized
(:func:`cross_sectional_z`: what a ranking model reads), against the feature's own past:
the reference is its history before the window and the KS distance of every past window of
the same length (:func:`window_null`) is the null distribution of the p-value. A market
regime that hurts the model shows in its live rank IC (the decay test), not here. Raw PSI
against the training reference is still measured and reported.

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


def cross_sectional_z(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Per date: (value − median) / interquartile range, for ``columns`` of a ``date, …``
    frame; a date whose cross-section has no spread gives NaN."""
    qs = frame.groupby("date")[columns].quantile([0.25, 0.5, 0.75])
    at = pd.Index(frame["date"])

    def level(q: float) -> np.ndarray:
        return qs.xs(q, level=1).reindex(at).to_numpy(dtype="float64")

    iqr = level(0.75) - level(0.25)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (frame[columns].to_numpy(dtype="float64") - level(0.5)) / np.where(iqr > 0, iqr,
                                                                                  np.nan)
    out = pd.DataFrame(z, columns=columns, index=frame.index)
    out.insert(0, "date", frame["date"].to_numpy())
    return out


MIN_NULL_WINDOWS = 20  # fewer past windows than this: the asymptotic p-value instead


def window_null(reference: dict[str, dict], history: pd.DataFrame, window: int,
                step: int) -> dict[str, np.ndarray]:
    """Per column: the KS distance to the reference of every ``window``-date slice of
    ``history`` (``date`` plus the columns), one slice every ``step`` dates."""
    dates, codes = np.unique(history["date"].to_numpy(), return_inverse=True)
    starts = np.arange(0, len(dates) - window + 1, step)
    out = {}
    for c in history.columns:
        if c not in reference or c == "date" or len(starts) == 0:
            continue
        ref = reference[c]
        edges = np.asarray(ref["edges"])
        v = history[c].to_numpy(dtype="float64")
        ok = np.isfinite(v)
        nb = len(edges) + 1
        flat = (codes[ok] + 1) * nb + np.searchsorted(edges, v[ok], side="right")
        counts = np.bincount(flat, minlength=(len(dates) + 1) * nb).reshape(-1, nb) * 1.0
        cum = counts.cumsum(axis=0)
        per_window = cum[starts + window] - cum[starts]
        total = per_window.sum(axis=1, keepdims=True)
        shares = np.divide(per_window, total, out=np.zeros_like(per_window), where=total > 0)
        gap = np.abs(shares.cumsum(axis=1)[:, :-1] - np.cumsum(ref["proportions"])[:-1])
        d = gap.max(axis=1) if gap.shape[1] else np.zeros(len(starts))
        out[c] = d[total[:, 0] > 0]
    return out


def empirical_p(d: float, null: np.ndarray) -> float:
    """Share of past windows at least as far from the reference as this one (+1 smoothing)."""
    return float((1 + np.sum(null >= d - 1e-12)) / (1 + len(null)))


def drift_table(reference: dict[str, dict], recent: pd.DataFrame,
                effective_n: int | None = None, psi_threshold: float = np.inf,
                fdr: float = 0.0, null: dict[str, np.ndarray] | None = None) -> pd.DataFrame:
    """Per column of ``recent`` with a reference: ``psi, ks, p_value, dead, drifted``.

    ``p_value``: against ``null[column]`` (:func:`window_null`) when it holds enough past
    windows, else the asymptotic one on ``effective_n`` draws. ``drifted``: dead, or PSI
    above ``psi_threshold`` and the KS test rejected under the Benjamini–Hochberg control at
    ``fdr`` across all columns. Dead columns first, then by PSI, largest first.
    """
    rows = []
    for c in recent.columns:
        if c not in reference:
            continue
        d, p = ks_binned(reference[c], recent[c], effective_n)
        past = (null or {}).get(c)
        if past is not None and len(past) >= MIN_NULL_WINDOWS and np.isfinite(d):
            p = empirical_p(d, past)
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


def cross_sectional_drift(reference: dict[str, dict], features: pd.DataFrame,
                          window: list, bins: int, psi_threshold: float, fdr: float,
                          z: pd.DataFrame | None = None) -> pd.DataFrame:
    """The drift table the retrain rule reads, for the ``window`` dates of ``features``
    (``symbol, date`` and one column per feature; the rows before the window are the
    feature's past).

    ``psi, ks, p_value`` on the cross-sectional z-scores against the feature's own past;
    ``psi_training``: raw PSI against the training ``reference``; ``dead`` when the window's
    raw values are all missing or constant (against the training reference), or its
    cross-sections have no spread where the past had; ``drifted`` as in :func:`drift_table`.
    ``z``: :func:`cross_sectional_z` of ``features`` when the caller has it already.
    """
    names = [c for c in reference if c in features.columns]
    first, last = pd.Timestamp(min(window)), pd.Timestamp(max(window))
    z = cross_sectional_z(features[features["date"] <= last], names) if z is None \
        else z[z["date"] <= last]
    past, recent_z = z[z["date"] < first], z[z["date"].isin(window)]
    zref = {c: reference_bins(past[c], bins) for c in names
            if np.isfinite(past[c].to_numpy(dtype="float64")).any()}
    recent = features[features["date"].isin(window)]
    null = window_null(zref, past[["date", *zref]], len(window), 1)
    table = drift_table(zref, recent_z[list(zref)], effective_n=recent["symbol"].nunique(),
                        psi_threshold=psi_threshold, fdr=fdr, null=null)
    untested = [c for c in names if c not in zref]
    if untested:
        table = pd.concat([table, pd.DataFrame({"name": untested, "dead": False,
                                                "drifted": False})], ignore_index=True)
    table["psi_training"] = [psi(reference[c], recent[c]) for c in table["name"]]
    raw_dead = np.array([is_dead(reference[c], recent[c]) for c in table["name"]])
    table["dead"] = table["dead"].astype(bool).to_numpy() | raw_dead
    table["drifted"] = table["drifted"].astype(bool).to_numpy() | raw_dead
    return table.sort_values(["dead", "psi"], ascending=[False, False], ignore_index=True,
                             na_position="last")
