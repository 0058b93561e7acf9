"""Process-wide settings the embedded services need, applied by entry points only.

Who calls :func:`configure_environment`: the CLI (its typer callback, before any command
runs), each flow function at its start (``daily_trading``, ``retrain``, ``drift_check``) and
the test suite's ``conftest``. No module calls it at import time.

Some of these are read when a library is *imported*, not when it is used, so the call must
come before that import:

- Prefect builds its settings from the environment at ``import prefect``
  (``prefect.context.GLOBAL_SETTINGS_CONTEXT``). The CLI imports every Prefect-using module
  inside its commands, after the callback has run. A flow function runs after Prefect is
  imported, so its own call cannot change Prefect's settings; runs started by deployments
  inherit the environment of the ``alphaline serve`` process, which the CLI configured.
- GitPython reads ``GIT_PYTHON_REFRESH`` at ``import git`` (DVC imports it lazily).
- ``FEAST_USAGE`` is read by older Feast releases at import; the pinned Feast (0.67) has no
  usage telemetry and does not read it, so Feast may be imported before this call.

Great Expectations, MLflow and DVC read theirs when a context, run or repo is opened, which
is after a flow's call.
"""

from __future__ import annotations

import os

# Set only where the user has not: an explicit environment always wins.
DEFAULTS = {
    "FEAST_USAGE": "False",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    "DO_NOT_TRACK": "1",
    "GX_ANALYTICS_ENABLED": "False",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    # MLflow logs through its own handler, not the run's: its INFO lines (database set-up,
    # input-example checks) would reach the console between the project's own
    "MLFLOW_LOGGING_LEVEL": "WARNING",
    "DVC_NO_ANALYTICS": "1",
    "GIT_PYTHON_REFRESH": "quiet",
}


def configure_environment() -> None:
    """Apply :data:`DEFAULTS` where unset. Idempotent; safe to call from every entry point."""
    for key, value in DEFAULTS.items():
        os.environ.setdefault(key, value)
