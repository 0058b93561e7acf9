"""SHAP explanations of tree models: global importance and per-row top contributions."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import shap


def shap_values(booster, X: pd.DataFrame) -> np.ndarray:
    return np.asarray(shap.TreeExplainer(booster).shap_values(X))


def global_importance(booster, X: pd.DataFrame) -> pd.Series:
    """Mean |SHAP| per feature, largest first."""
    values = shap_values(booster, X)
    return pd.Series(np.abs(values).mean(axis=0), index=X.columns).sort_values(ascending=False)


def importance_figure(importance: pd.Series, labels: dict[str, str] | None = None, top: int = 20):
    top_items = importance.head(top)[::-1]
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(top_items) + 1.2))
    names = [f"{n} ({labels[n]})" if labels and n in labels else n for n in top_items.index]
    ax.barh(names, top_items.to_numpy(), color="#3b6ea8")
    ax.set_xlabel("mean |SHAP value|")
    ax.set_title("Global feature importance (SHAP)")
    fig.tight_layout()
    return fig


def top_contributions(booster, X: pd.DataFrame, k: int = 5) -> list[list[dict]]:
    """For each row, its ``k`` largest contributions by magnitude: feature, value, shap."""
    values = shap_values(booster, X)
    out = []
    for i in range(len(X)):
        order = np.argsort(-np.abs(values[i]))[:k]
        out.append([{"feature": X.columns[j], "value": float(X.iat[i, j]),
                     "shap": float(values[i, j])} for j in order])
    return out
