"""SHAP explanations: global importance and per-row top contributions.

The values come from :meth:`models.signal.SignalModel.contributions`, which decomposes the
ensemble's score exactly into per-feature TreeSHAP contributions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure


def global_importance(values: np.ndarray, columns: list[str]) -> pd.Series:
    """Mean |SHAP| per feature, largest first."""
    return pd.Series(np.abs(values).mean(axis=0), index=columns).sort_values(ascending=False)


def importance_figure(importance: pd.Series, labels: dict[str, str] | None = None, top: int = 20):
    top_items = importance.head(top)[::-1]
    # A bare Figure needs no backend (and no pyplot state): MLflow saves it with savefig.
    fig = Figure(figsize=(8, 0.35 * len(top_items) + 1.2))
    ax = fig.subplots()
    names = [f"{n} ({labels[n]})" if labels and n in labels else n for n in top_items.index]
    ax.barh(names, top_items.to_numpy(), color="#3b6ea8")
    ax.set_xlabel("mean |SHAP value| (ensemble score units)")
    ax.set_title("Global feature importance (SHAP)")
    fig.tight_layout()
    return fig


def top_contributions(values: np.ndarray, X: pd.DataFrame, k: int = 5) -> list[list[dict]]:
    """For each row, its ``k`` largest contributions by magnitude: feature, value, shap."""
    out = []
    for i in range(len(X)):
        order = np.argsort(-np.abs(values[i]))[:k]
        out.append([{"feature": X.columns[j], "value": float(X.iat[i, j]),
                     "shap": float(values[i, j])} for j in order])
    return out
