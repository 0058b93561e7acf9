"""Feature validation after each training: dead features, correlated groups, suspected leaks.

A leak is suspected when a feature tracks the label itself (|Spearman ρ| above a bar), or
when it carries a large share of the model's in-sample importance but far less out of
sample — what a feature that peeks at its own label looks like to a tree model.
Importance is permutation importance: the drop in mean daily rank IC when the feature is
shuffled within each date.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from alphaline.config import FeatureValidationParams
from alphaline.models.metrics import mean_rank_ic


@dataclass
class FeatureReport:
    n_features: int
    dead: list[str] = field(default_factory=list)
    correlated_groups: list[list[str]] = field(default_factory=list)
    label_corr: dict[str, float] = field(default_factory=dict)
    importance: dict[str, dict[str, float]] = field(default_factory=dict)
    leaks: list[dict] = field(default_factory=list)

    @property
    def suspected_leak(self) -> bool:
        return bool(self.leaks)

    def as_dict(self) -> dict:
        return {**asdict(self), "suspected_leak": self.suspected_leak}

    def markdown(self) -> str:
        lines = ["# Feature validation", "", f"- features: {self.n_features}",
                 f"- dead (near-zero variance): {', '.join(self.dead) or 'none'}",
                 f"- correlated groups (|ρ| above the bar): {len(self.correlated_groups)}"]
        lines += [f"  - {', '.join(g)}" for g in self.correlated_groups]
        lines.append(f"- suspected leaks: {len(self.leaks) or 'none'}")
        lines += [f"  - **{x['feature']}**: {x['rule']}" for x in self.leaks]
        if self.importance:
            lines += ["", "| feature | in-sample | out-of-sample | ρ with label |",
                      "|---|---:|---:|---:|"]
            for name, imp in self.importance.items():
                lines.append(f"| {name} | {imp['in_sample']:.4f} | {imp['out_of_sample']:.4f} "
                             f"| {self.label_corr.get(name, float('nan')):.3f} |")
        return "\n".join(lines) + "\n"


def dead_features(X: pd.DataFrame, min_std: float) -> list[str]:
    std = X.astype("float64").std()
    return [str(c) for c in X.columns if not np.isfinite(std[c]) or std[c] <= min_std]


def _ranks(X: pd.DataFrame) -> np.ndarray:
    return X.rank().to_numpy(dtype="float64")


def correlated_groups(X: pd.DataFrame, threshold: float) -> list[list[str]]:
    """Connected components of the graph |Spearman ρ| > threshold (groups of two or more)."""
    cols = list(X.columns)
    ranks = _ranks(X)
    ranks = np.where(np.isnan(ranks), np.nanmean(ranks, axis=0), ranks)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = np.nan_to_num(np.corrcoef(ranks, rowvar=False))
    adjacent = np.abs(rho) > threshold
    np.fill_diagonal(adjacent, False)
    seen, groups = set(), []
    for i in range(len(cols)):
        if i in seen or not adjacent[i].any():
            continue
        stack, members = [i], []
        while stack:
            j = stack.pop()
            if j in seen:
                continue
            seen.add(j)
            members.append(cols[j])
            stack.extend(np.flatnonzero(adjacent[j]).tolist())
        groups.append(sorted(members))
    return groups


def label_correlation(X: pd.DataFrame, y: pd.Series) -> pd.Series:
    """Pooled Spearman ρ of each feature with the label."""
    ry = y.rank().to_numpy(dtype="float64")
    out = {}
    for c in X.columns:
        rx = X[c].rank().to_numpy(dtype="float64")
        ok = np.isfinite(rx) & np.isfinite(ry)
        if ok.sum() < 3 or rx[ok].std() == 0:
            out[c] = 0.0
            continue
        out[c] = float(np.corrcoef(rx[ok], ry[ok])[0, 1])
    return pd.Series(out)


def permutation_importance(predict, X: pd.DataFrame, y: pd.Series, dates: pd.Series,
                           features: list[str], seed: int = 0) -> pd.Series:
    """Drop in mean daily rank IC when each feature is shuffled within each date."""
    rng = np.random.default_rng(seed)
    d = np.asarray(dates)
    base = mean_rank_ic(predict(X), y.to_numpy(), d)
    # a within-date permutation: sort by (date, random key)
    order = np.lexsort((rng.random(len(X)), d))
    inverse_sorted = np.argsort(d, kind="stable")
    out = {}
    for name in features:
        shuffled = X.copy()
        values = X[name].to_numpy()
        permuted = np.empty_like(values)
        permuted[inverse_sorted] = values[order]
        shuffled[name] = permuted
        out[name] = base - mean_rank_ic(predict(shuffled), y.to_numpy(), d)
    return pd.Series(out)


def leak_rules(label_corr: pd.Series, in_sample: pd.Series, out_of_sample: pd.Series,
                thresholds: FeatureValidationParams) -> list[dict]:
    leaks = []
    for name, rho in label_corr.items():
        if abs(rho) > thresholds.leak_label_corr:
            leaks.append({"feature": name, "rule": f"|ρ| with the label {abs(rho):.3f} > "
                                                   f"{thresholds.leak_label_corr}"})
    positive = in_sample.clip(lower=0)
    total = float(positive.sum())
    for name, imp in in_sample.items():
        share = imp / total if total > 0 else 0.0
        oos = max(float(out_of_sample.get(name, 0.0)), 0.0)
        if share >= thresholds.leak_min_share and imp > thresholds.leak_importance_ratio * oos:
            leaks.append({"feature": name, "rule": (
                f"{share:.0%} of in-sample importance ({imp:.4f}), "
                f"{'only ' + format(oos, '.4f') if oos > 0 else 'none'} out of sample "
                f"(ratio above {thresholds.leak_importance_ratio:g})")})
    return leaks


def validate_features(X: pd.DataFrame, y: pd.Series, thresholds: FeatureValidationParams, *,
                      in_sample: pd.Series | None = None,
                      out_of_sample: pd.Series | None = None,
                      sample_rows: int = 200_000, seed: int = 0) -> FeatureReport:
    sample = X.sample(min(len(X), sample_rows), random_state=seed)
    ys = y.loc[sample.index]
    rho = label_correlation(sample, ys)
    report = FeatureReport(n_features=X.shape[1], dead=dead_features(X, thresholds.dead_std),
                           correlated_groups=correlated_groups(sample, thresholds.correlated_abs),
                           label_corr={k: round(float(v), 6) for k, v in rho.items()})
    ins = in_sample if in_sample is not None else pd.Series(dtype="float64")
    oos = out_of_sample if out_of_sample is not None else pd.Series(dtype="float64")
    report.importance = {n: {"in_sample": float(ins[n]), "out_of_sample": float(oos.get(n, 0.0))}
                         for n in ins.sort_values(ascending=False).index}
    report.leaks = leak_rules(rho, ins, oos, thresholds)
    return report
