"""SHAP explanations: TreeSHAP values, global importance and per-row top contributions.

The values come from :meth:`models.signal.SignalModel.contributions`, which decomposes the
ensemble's score exactly into per-feature TreeSHAP contributions. Each member's TreeSHAP
values come from per-leaf tables built once per booster (``models.treeshap``), equal to
LightGBM's own ``predict(..., pred_contrib=True)`` (the C++ code ``shap.TreeExplainer``
calls for a LightGBM model) and several times faster; a booster the tables do not cover
goes to LightGBM. ``shap`` stays the library for plots and for the TFT's explanations.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from alphaline.models import treeshap

if TYPE_CHECKING:
    import lightgbm as lgb

_TABLES = "_alphaline_treeshap_tables"  # cached on the booster: built once per model


def shap_tables(booster: lgb.Booster) -> treeshap.Tables | None:
    """The booster's TreeSHAP tables, built on first use (or kept from the saved model)."""
    if not hasattr(booster, _TABLES):
        setattr(booster, _TABLES, treeshap.build(booster))
    return getattr(booster, _TABLES)


def keep_tables(booster: lgb.Booster, tables: treeshap.Tables) -> None:
    """Attach tables read with the model, so its first reasons skip building them."""
    setattr(booster, _TABLES, tables)


def tree_shap(booster: lgb.Booster, values: np.ndarray, num_threads: int
              ) -> tuple[np.ndarray, np.ndarray]:
    """(TreeSHAP values, rows × features; raw margins, rows) of one booster.

    Pass the array the booster scores (float32 for ``LGBMMember``), so that every row takes
    the branches its score took. The margins are the values plus the expected value: the
    raw score, without a second pass over the trees.
    """
    tables = shap_tables(booster)
    if tables is None:
        out = booster.predict(values, pred_contrib=True, num_threads=num_threads)
    else:
        out = treeshap.contributions(tables, values)
    return out[:, :-1], out.sum(axis=1)


def global_importance(values: np.ndarray, columns: list[str]) -> pd.Series:
    """Mean |SHAP| per feature, largest first."""
    return pd.Series(np.abs(values).mean(axis=0), index=columns).sort_values(ascending=False)


def importance_figure(importance: pd.Series, labels: dict[str, str] | None = None, top: int = 20):
    from matplotlib.figure import Figure  # only where a figure is drawn: serving stays light

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
    k = min(k, values.shape[1])
    if len(X) == 0 or k == 0:
        return [[] for _ in range(len(X))]
    magnitude = -np.abs(values)
    cut = np.argpartition(magnitude, k - 1, axis=1)[:, :k] if k < values.shape[1] else \
        np.broadcast_to(np.arange(values.shape[1]), values.shape)
    order = np.take_along_axis(cut, np.argsort(np.take_along_axis(magnitude, cut, axis=1),
                                               axis=1, kind="stable"), axis=1)
    names = np.asarray(X.columns, dtype=object)[order].tolist()
    feature_values = np.take_along_axis(X.to_numpy(dtype="float64"), order, axis=1).tolist()
    shap_values = np.take_along_axis(values, order, axis=1).tolist()
    return [[{"feature": f, "value": v, "shap": s} for f, v, s in zip(*row, strict=True)]
            for row in zip(names, feature_values, shap_values, strict=True)]


def reason_text(c: dict) -> str:
    """One reason as the reports print it: a SHAP contribution, or a TFT selection weight."""
    if "shap" in c:
        return f"{c['feature']} {c['shap']:+.4f}"
    return f"{c['feature']} w={c['weight']:.3f}"
