"""Process-wide settings the embedded services need before they are imported."""

from __future__ import annotations

import os

# Set only where the user has not: an explicit environment always wins.
_DEFAULTS = {
    "FEAST_USAGE": "False",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    "DO_NOT_TRACK": "1",
    "GX_ANALYTICS_ENABLED": "False",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "DVC_NO_ANALYTICS": "1",
    "GIT_PYTHON_REFRESH": "quiet",
}


def configure_environment() -> None:
    for key, value in _DEFAULTS.items():
        os.environ.setdefault(key, value)
