"""Where a project keeps its files: one object, derived from a root folder and the params."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from alphaline.config import Params, load_params
from alphaline.secrets import url_from


@dataclass(frozen=True)
class Project:
    """A working copy: ``root`` holds params.yaml, ``data/`` (DVC) and ``state/`` (services)."""

    root: Path
    params: Params

    @classmethod
    def load(cls, root: str | Path | None = None, params_file: str | Path | None = None) -> Project:
        root = Path(root or os.environ.get("ALPHALINE_HOME") or Path.cwd()).resolve()
        params_path = Path(params_file) if params_file else root / "params.yaml"
        return cls(root=root, params=load_params(params_path))

    # data, versioned by DVC
    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def validated_bars(self) -> Path:
        return self.data_dir / "validated" / "bars.parquet"

    @property
    def raw_bars(self) -> Path:
        return self.data_dir / "raw" / "bars.parquet"

    @property
    def feature_table(self) -> Path:
        return self.data_dir / "features" / "features.parquet"

    @property
    def label_table(self) -> Path:
        return self.data_dir / "features" / "labels.parquet"

    @property
    def quarantine_dir(self) -> Path:
        return self.data_dir / "quarantine"

    # service state, outside DVC
    @property
    def state_dir(self) -> Path:
        return self.root / "state"

    @property
    def gx_dir(self) -> Path:
        return self.state_dir / "gx"

    @property
    def feast_dir(self) -> Path:
        return self.state_dir / "feast"

    @property
    def optuna_url(self) -> str:
        """From ``storage.optuna_url_env``'s variable, the params, or state/optuna.db (an RDB
        storage every tuning worker shares); it may hold a password: print it through
        ``alphaline.secrets.mask_url``."""
        s = self.params.storage
        return url_from("storage.optuna_url", s.optuna_url, s.optuna_url_env,
                        f"sqlite:///{self.state_dir / 'optuna.db'}")

    @property
    def mlflow_tracking_uri(self) -> str:
        """From ``storage.mlflow_tracking_uri_env``'s variable, the params, or state/mlflow.db;
        it may hold a password: print it through ``alphaline.secrets.mask_url``."""
        s = self.params.storage
        return url_from("storage.mlflow_tracking_uri", s.mlflow_tracking_uri,
                        s.mlflow_tracking_uri_env, f"sqlite:///{self.state_dir / 'mlflow.db'}")

    @property
    def mlflow_artifacts(self) -> Path:
        return self.state_dir / "mlartifacts"

    @property
    def ledger_url(self) -> str:
        """From ``storage.ledger_url_env``'s variable, the params, or state/ledger.db; it may
        hold a password: print it through ``alphaline.secrets.mask_url``."""
        s = self.params.storage
        return url_from("storage.ledger_url", s.ledger_url, s.ledger_url_env,
                        f"sqlite:///{self.state_dir / 'ledger.db'}")

    # live state the daily flow appends to: outside DVC, so no checkout or repro rewinds it
    @property
    def live_dir(self) -> Path:
        return self.state_dir / "live"

    @property
    def live_bars(self) -> Path:
        """Every validated bar the daily flow has used: research history plus each day."""
        return self.live_dir / "bars.parquet"

    @property
    def live_feature_table(self) -> Path:
        return self.live_dir / "features.parquet"

    @property
    def live_feast_dir(self) -> Path:
        """The Feast repo the daily flow serves from (its registry points at the live table)."""
        return self.live_dir / "feast"

    @property
    def reports_dir(self) -> Path:
        return self.root / "reports"

    @property
    def metrics_dir(self) -> Path:
        return self.root / "metrics"

    def ensure_dirs(self) -> None:
        for d in (self.data_dir, self.state_dir, self.reports_dir, self.metrics_dir):
            d.mkdir(parents=True, exist_ok=True)
