"""Reports people look at: self-contained HTML pages of backtests, walk-forwards and days.

Entry points: :func:`write_backtest_report` (``backtest.py``), :func:`write_daily_report`
(``daily.py``), and :mod:`~alphaline.reporting.publish` (MLflow artifact, Prefect link).
Imported lazily, so ``alphaline.reporting.stats`` does not pull in Prefect or MLflow.
"""

from __future__ import annotations

import importlib

_ENTRY_POINTS = {
    "write_backtest_report": "alphaline.reporting.backtest",
    "write_daily_report": "alphaline.reporting.daily",
    "log_to_mlflow": "alphaline.reporting.publish",
    "link_artifact": "alphaline.reporting.publish",
    "publish_backtest": "alphaline.reporting.publish",
}

__all__ = list(_ENTRY_POINTS)


def __getattr__(name: str):
    if name in _ENTRY_POINTS:
        return getattr(importlib.import_module(_ENTRY_POINTS[name]), name)
    raise AttributeError(f"module 'alphaline.reporting' has no attribute {name!r}")
