"""Time-series splitters that keep labels of the training rows out of each test window."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike


@dataclass(frozen=True)
class Split:
    train: np.ndarray  # row positions
    test: np.ndarray
    test_start: pd.Timestamp
    test_end: pd.Timestamp


def purged_walk_forward(dates: pd.Series, n_splits: int, horizon: int, embargo: int,
                        min_train_days: int) -> list[Split]:
    """Expanding-window folds over the sessions after ``min_train_days``.

    A training row at session ``j`` carries a label over sessions ``j+1 .. j+1+h``; it is
    purged unless that span ends before the first test label starts (``j < a - h``), and an
    embargo of ``embargo`` more sessions is left as a gap against serial correlation.
    """
    values = pd.to_datetime(pd.Series(dates)).to_numpy()
    unique = np.unique(values)
    if len(unique) < min_train_days + n_splits:
        raise ValueError(
            f"{len(unique)} sessions cannot give {n_splits} folds after {min_train_days} "
            f"training sessions"
        )
    position = np.searchsorted(unique, values)
    blocks = np.array_split(np.arange(min_train_days, len(unique)), n_splits)
    splits = []
    for block in blocks:
        first, last = block[0], block[-1]
        train_cut = first - horizon - embargo  # train sessions are < train_cut
        train = np.flatnonzero(position < train_cut)
        test = np.flatnonzero((position >= first) & (position <= last))
        if len(train) == 0 or len(test) == 0:
            continue
        splits.append(Split(train, test, pd.Timestamp(unique[first]), pd.Timestamp(unique[last])))
    return splits


def _purge_mask(position: np.ndarray, blocks: list[tuple[int, int]], horizon: int,
                embargo: int) -> np.ndarray:
    """Rows allowed in training next to test blocks of sessions [a, b].

    A row at session ``j`` has its label over ``j+1 .. j+1+h``; a test block's labels span
    ``a+1 .. b+1+h``. They overlap when ``a - h <= j <= b + h``: purged. The ``embargo``
    sessions after ``b + h`` are dropped too (serial correlation leaks forward).
    """
    keep = np.ones(len(position), dtype=bool)
    for a, b in blocks:
        keep &= (position < a - horizon) | (position > b + horizon + embargo)
    return keep


def _groups(values: np.ndarray, n_groups: int) -> tuple[np.ndarray, list[np.ndarray]]:
    unique = np.unique(values)
    if len(unique) < n_groups:
        raise ValueError(f"{len(unique)} sessions cannot form {n_groups} groups")
    return np.searchsorted(unique, values), np.array_split(np.arange(len(unique)), n_groups)


def purged_kfold(dates: pd.Series, n_splits: int, horizon: int, embargo: int) -> list[Split]:
    """K contiguous test blocks; training on both sides, purged and embargoed."""
    values = pd.to_datetime(pd.Series(dates)).to_numpy()
    position, groups = _groups(values, n_splits)
    unique = np.unique(values)
    splits = []
    for g in groups:
        a, b = int(g[0]), int(g[-1])
        test = np.flatnonzero((position >= a) & (position <= b))
        train = np.flatnonzero(_purge_mask(position, [(a, b)], horizon, embargo)
                               & ~((position >= a) & (position <= b)))
        splits.append(Split(train, test, pd.Timestamp(unique[a]), pd.Timestamp(unique[b])))
    return splits


@dataclass(frozen=True)
class CPCVSplit(Split):
    test_groups: tuple[int, ...] = ()


def combinatorial_purged(dates: pd.Series, n_groups: int, n_test_groups: int, horizon: int,
                         embargo: int) -> list[CPCVSplit]:
    """Combinatorial Purged CV (López de Prado): every choice of ``n_test_groups`` of the
    ``n_groups`` contiguous groups is a test set; C(N, k) splits."""
    from itertools import combinations

    if not 0 < n_test_groups < n_groups:
        raise ValueError("need 0 < n_test_groups < n_groups")
    values = pd.to_datetime(pd.Series(dates)).to_numpy()
    position, groups = _groups(values, n_groups)
    unique = np.unique(values)
    splits = []
    for chosen in combinations(range(n_groups), n_test_groups):
        blocks = [(int(groups[g][0]), int(groups[g][-1])) for g in chosen]
        in_test = np.zeros(len(position), dtype=bool)
        for a, b in blocks:
            in_test |= (position >= a) & (position <= b)
        train = np.flatnonzero(_purge_mask(position, blocks, horizon, embargo) & ~in_test)
        splits.append(CPCVSplit(train, np.flatnonzero(in_test),
                                pd.Timestamp(unique[blocks[0][0]]),
                                pd.Timestamp(unique[blocks[-1][1]]), tuple(chosen)))
    return splits


def cpcv_paths(splits: list[CPCVSplit], n_groups: int) -> list[list[tuple[int, int]]]:
    """Backtest paths: each is one (split index, group) per group, in time order.

    Group ``g`` is tested by C(N-1, k-1) splits; the i-th of them feeds path i, so there
    are C(N-1, k-1) paths and each covers the whole history exactly once.
    """
    per_group: dict[int, list[int]] = {g: [] for g in range(n_groups)}
    for i, split in enumerate(splits):
        for g in split.test_groups:
            per_group[g].append(i)
    n_paths = len(per_group[0])
    if any(len(v) != n_paths for v in per_group.values()):
        raise ValueError("splits do not test every group equally often")
    return [[(per_group[g][p], g) for g in range(n_groups)] for p in range(n_paths)]


def session_groups(dates: pd.Series, n_groups: int) -> np.ndarray:
    """The CPCV group (0 .. n_groups-1) of each row, as :func:`combinatorial_purged` forms them."""
    values = pd.to_datetime(pd.Series(dates)).to_numpy()
    position, groups = _groups(values, n_groups)
    of_session = np.empty(len(np.unique(values)), dtype=int)
    for g, sessions in enumerate(groups):
        of_session[sessions] = g
    return of_session[position]


def path_predictions(scores: pd.DataFrame, paths: list[list[tuple[int, int]]]
                     ) -> list[pd.DataFrame]:
    """Backtest path frames from per-split test predictions with ``fold`` (the split's index)
    and ``group``."""
    keyed = scores.set_index(["fold", "group"]).sort_index()
    return [pd.concat([keyed.loc[(i, g)] for i, g in path]).reset_index(drop=True)
            for path in paths]


class Estimator(Protocol):
    """The contract every model here follows (docs/architecture.md)."""

    def fit(self, X: pd.DataFrame, y: pd.Series, *, dates: pd.Series,
            sample_weight: np.ndarray | None = None) -> Estimator: ...

    def predict(self, X: pd.DataFrame, *, dates: ArrayLike) -> np.ndarray: ...


Outputs = Callable[[Any, pd.DataFrame, np.ndarray], Mapping[str, ArrayLike]]


def _scores(model: Any, X: pd.DataFrame, dates: np.ndarray) -> Mapping[str, ArrayLike]:
    return {"score": model.predict(X, dates=dates)}


@dataclass(frozen=True)
class CVResult:
    """Out-of-fold predictions (``fold, row, date, symbol, label`` and the model's outputs,
    ``score`` by default; ``row`` is the position in ``X``) and one row of figures per fold."""

    predictions: pd.DataFrame
    folds: pd.DataFrame


FoldMap = Callable[[Callable[[int], Any], list[int]], list[Any]]


def cross_val_predict(make_model: Callable[[], Any], X: pd.DataFrame, y: pd.Series, *,
                      dates: pd.Series, splits: list[Split], symbols: pd.Series | None = None,
                      sample_weight: np.ndarray | None = None, outputs: Outputs = _scores,
                      on_fold: Callable[[int, pd.DataFrame], None] | None = None,
                      map_folds: FoldMap | None = None) -> CVResult:
    """The one fold loop: fit a fresh model on each split's training rows, predict its test
    rows. Tuning, stacking, the meta-labeler, the gate's CPCV and the TFT all run through it.

    A sequence model declares ``context_sessions_`` after ``fit``: how many sessions before
    a scored row its ``predict`` reads. It then gets those rows too (inputs known before the
    test block starts, never labels) and only the test rows' outputs are kept.
    ``on_fold(k, predictions so far)`` runs after each fold (Optuna prunes from it).
    ``map_folds(fit_fold, folds)``: runs the folds elsewhere, all at once (the gate's CPCV on
    a Dask cluster, ``flows.parallel.fold_mapper``); ``on_fold`` then runs after all of
    them, in fold order. The folds are independent, so the result is the same.
    """
    from alphaline.models.metrics import mean_rank_ic

    dates = pd.Series(pd.to_datetime(np.asarray(dates)))
    y = pd.Series(np.asarray(y, dtype="float64"))
    symbols = None if symbols is None else pd.Series(np.asarray(symbols))
    position = np.searchsorted(np.unique(dates.to_numpy()), dates.to_numpy())

    def fit_fold(k: int) -> tuple[pd.DataFrame, dict]:
        split = splits[k]
        w = None if sample_weight is None else np.asarray(sample_weight)[split.train]
        model = make_model().fit(X.iloc[split.train], y.iloc[split.train],
                                 dates=dates.iloc[split.train], sample_weight=w)
        rows = split.test
        context = int(getattr(model, "context_sessions_", 0))
        if context:
            lo, hi = position[split.test].min() - context, position[split.test].max()
            rows = np.flatnonzero((position >= lo) & (position <= hi))
        out = outputs(model, X.iloc[rows], dates.iloc[rows].to_numpy())
        keep = np.searchsorted(rows, split.test)
        frame = pd.DataFrame({
            "fold": k, "row": split.test, "date": dates.iloc[split.test].to_numpy(),
            **({} if symbols is None else {"symbol": symbols.iloc[split.test].to_numpy()}),
            **{name: np.asarray(values)[keep] for name, values in out.items()},
            "label": y.iloc[split.test].to_numpy()})
        figure = {"fold": k, "test_start": split.test_start, "test_end": split.test_end,
                  "train_rows": len(split.train), "test_rows": len(split.test),
                  **({"rank_ic": mean_rank_ic(frame["score"], frame["label"],
                                              frame["date"])} if "score" in frame else {})}
        return frame, figure

    done = (None if map_folds is None
            else iter(map_folds(fit_fold, list(range(len(splits))))))
    parts, figures = [], []
    for k in range(len(splits)):
        frame, figure = fit_fold(k) if done is None else next(done)
        parts.append(frame)
        figures.append(figure)
        if on_fold is not None:
            on_fold(k, pd.concat(parts, ignore_index=True))
    predictions = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    return CVResult(predictions, pd.DataFrame(figures))


def holdout_start(dates: pd.Series, fraction: float) -> pd.Timestamp:
    """The first session of the last ``fraction`` of sessions: the gate's held-out period."""
    unique = np.unique(pd.to_datetime(pd.Series(dates)).to_numpy())
    return pd.Timestamp(unique[int(np.floor(len(unique) * (1 - fraction)))])


def holdout_cpcv(dates: pd.Series, start: pd.Timestamp, n_groups: int, n_test_groups: int,
                 horizon: int, embargo: int) -> list[CPCVSplit]:
    """CPCV whose test groups tile the held-out period from ``start`` on, while the history
    before it always trains (less its last ``1 + horizon`` sessions, whose labels reach into
    the held-out period; the purge and embargo inside the period are CPCV's own).

    Tuning never sees the held-out period, so no test group was seen by the search that chose
    the hyperparameters."""
    values = pd.to_datetime(pd.Series(dates)).to_numpy()
    held = np.flatnonzero(values >= np.datetime64(start))
    before = np.flatnonzero(values < np.datetime64(start))
    sessions_before = np.unique(values[before])
    cut = sessions_before[-(1 + horizon)] if len(sessions_before) > 1 + horizon else None
    history = before if cut is None else before[values[before] < cut]
    inner = combinatorial_purged(pd.Series(values[held]), n_groups, n_test_groups, horizon,
                                 embargo)
    return [CPCVSplit(np.concatenate([history, held[s.train]]), held[s.test], s.test_start,
                      s.test_end, s.test_groups) for s in inner]
