"""Time-series splitters that keep labels of the training rows out of each test window."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


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
