"""MLflow "models from code" entry point: the signal bundle as a pyfunc model.

MLflow stores this file with the model and runs it on load, so no estimator is pickled;
the bundle itself is LightGBM text files and JSON (``models/signal.py``).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import mlflow
import pandas as pd

from alphaline.models.signal import SignalModel

warnings.filterwarnings("ignore", message=".*Add type hints to the `predict` method.*")


class SignalPyfunc(mlflow.pyfunc.PythonModel):
    """Scores one date's cross-section per request (``mlflow models serve`` included)."""

    def load_context(self, context) -> None:
        self.signal = SignalModel.load(Path(context.artifacts["signal"]))

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        """Trees: one row per symbol. A sequence model (TFT, stack): ``date, symbol, ret`` and
        the features of each symbol's encoder sessions too; every row with a full window
        is scored."""
        return self.signal.score(model_input)


mlflow.models.set_model(SignalPyfunc())
