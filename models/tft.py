"""Temporal Fusion Transformer (pytorch-forecasting on ``lightning.pytorch``): multi-horizon
quantile forecasts of each symbol's daily return, turned into a cross-sectional score.

At the close of session ``t`` the encoder sees the last ``encoder_days`` sessions of
returns and features (nothing after ``t``); the decoder forecasts the returns of sessions
``t+1 .. t+1+h``. The label of row ``t`` compounds the returns of ``t+2 .. t+1+h``, so the
score is the sum of the median forecasts for those steps.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

log = logging.getLogger(__name__)
for _name in ("lightning.pytorch", "lightning.fabric", "lightning"):
    logging.getLogger(_name).setLevel(logging.WARNING)  # no per-fit banners and tips


def returns_panel(bars: pd.DataFrame) -> pd.DataFrame:
    """``symbol, date, ret``: close-to-close return of each session (first one dropped)."""
    b = bars.sort_values(["symbol", "date"])
    ret = b.groupby("symbol")["close"].pct_change()
    return pd.DataFrame({"symbol": b["symbol"].to_numpy(), "date": b["date"].to_numpy(),
                         "ret": ret.to_numpy()}).dropna()


def accelerator(device: str) -> str:
    """``cpu`` | ``cuda`` | ``auto`` → a Lightning accelerator; ``cuda`` without a GPU fails."""
    import torch

    if device == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("model.tft.device is 'cuda' but no CUDA device is visible")
        return "gpu"
    if device == "auto":
        return "gpu" if torch.cuda.is_available() else "cpu"
    return "cpu"


@dataclass(frozen=True)
class TFTConfig:
    """Every value from ``params.yaml`` (``model.tft``, ``features.label_horizon``)."""

    horizon: int
    encoder_days: int
    hidden_size: int
    attention_heads: int
    epochs: int
    batch_size: int
    learning_rate: float
    quantiles: tuple[float, ...]
    device: str
    seed: int
    dropout: float
    gradient_clip: float


class TFTForecaster(BaseEstimator):
    """The estimator contract on a panel: ``X`` has ``symbol``, ``ret`` (the session's
    close-to-close return, known at its close) and the feature columns, one row per
    (symbol, session); ``dates`` gives each row's session.

    The forecaster learns the return sequence in ``X["ret"]`` itself, so ``fit`` takes ``y``
    for the common contract and does not use it. ``predict`` scores every row with a full
    encoder window (NaN otherwise) and reads ``context_sessions_`` sessions before it.
    """

    def __init__(self, *, config: TFTConfig, features: list[str]):
        self.config = config
        self.features = features

    def _frame(self, X: pd.DataFrame, dates: ArrayLike) -> pd.DataFrame:
        missing = [c for c in ("symbol", "ret", *self.features) if c not in X.columns]
        if missing:
            raise ValueError(f"the TFT's X lacks columns {missing}")
        f = X[["symbol", "ret", *self.features]].reset_index(drop=True)
        f["date"] = pd.to_datetime(np.asarray(dates))
        f["row"] = np.arange(len(f))
        f = f.sort_values(["symbol", "date"], ignore_index=True)
        sessions = np.unique(f["date"].to_numpy())
        f["time_idx"] = np.searchsorted(sessions, f["date"].to_numpy()).astype("int64")
        f["symbol"] = f["symbol"].astype(str)
        f[self.features] = f[self.features].astype("float32").fillna(0.0)
        f["ret"] = f["ret"].astype("float32").fillna(0.0)
        return f

    def _dataset(self, frame: pd.DataFrame):
        from pytorch_forecasting import TimeSeriesDataSet
        from pytorch_forecasting.data import EncoderNormalizer

        c = self.config
        return TimeSeriesDataSet(
            frame, time_idx="time_idx", target="ret", group_ids=["symbol"],
            max_encoder_length=c.encoder_days, min_encoder_length=c.encoder_days,
            max_prediction_length=c.horizon + 1, min_prediction_length=c.horizon + 1,
            time_varying_unknown_reals=["ret", *self.features],
            target_normalizer=EncoderNormalizer(), add_relative_time_idx=True,
            allow_missing_timesteps=True)

    def fit(self, X: pd.DataFrame, y: pd.Series | None = None, *, dates: ArrayLike,
            sample_weight: np.ndarray | None = None) -> TFTForecaster:
        import lightning.pytorch as pl
        from pytorch_forecasting import TemporalFusionTransformer
        from pytorch_forecasting.metrics import QuantileLoss

        if sample_weight is not None:
            raise ValueError("the TFT does not take sample weights")
        c = self.config
        pl.seed_everything(c.seed, workers=True, verbose=False)
        self.dataset_ = self._dataset(self._frame(X, dates))
        loader = self.dataset_.to_dataloader(train=True, batch_size=c.batch_size,
                                             num_workers=0)
        self.model_ = TemporalFusionTransformer.from_dataset(
            self.dataset_, hidden_size=c.hidden_size, attention_head_size=c.attention_heads,
            hidden_continuous_size=max(c.hidden_size // 2, 4), dropout=c.dropout,
            learning_rate=c.learning_rate, loss=QuantileLoss(list(c.quantiles)),
            log_interval=-1)
        trainer = pl.Trainer(max_epochs=c.epochs, accelerator=accelerator(c.device),
                             devices=1, gradient_clip_val=c.gradient_clip, logger=False,
                             enable_checkpointing=False, enable_progress_bar=False,
                             enable_model_summary=False, deterministic=True)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", ".*does not have many workers.*")
            trainer.fit(self.model_, train_dataloaders=loader)
        self.epoch_loss_ = float(trainer.callback_metrics.get("train_loss_epoch", np.nan))
        self.context_sessions_ = c.encoder_days
        return self

    def _predict_raw(self, X: pd.DataFrame, dates: ArrayLike):
        """Raw forecasts of every window whose encoder ends at a row of ``X``.

        Each symbol's sequence gets ``horizon + 1`` placeholder sessions after its last row:
        the decoder reads only known inputs (relative time), never those values, so the
        newest rows are scored as they would be live.
        """
        check_is_fitted(self)
        frame = self._frame(X, dates)
        last = frame.groupby("symbol", sort=False).tail(1)
        pad = pd.concat([last.assign(time_idx=last["time_idx"] + step, row=-1)
                         for step in range(1, self.config.horizon + 2)], ignore_index=True)
        pad[["ret", *self.features]] = 0.0
        padded = pd.concat([frame, pad], ignore_index=True)
        data = type(self.dataset_).from_dataset(self.dataset_, padded, stop_randomization=True)
        loader = data.to_dataloader(train=False, batch_size=self.config.batch_size * 4,
                                    num_workers=0)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", ".*does not have many workers.*")
            out = self.model_.predict(loader, mode="raw", return_index=True,
                                      trainer_kwargs={"accelerator": accelerator(
                                          self.config.device), "logger": False,
                                          "enable_progress_bar": False})
        return frame, out

    def predict(self, X: pd.DataFrame, *, dates: ArrayLike) -> np.ndarray:
        """The sum of the median forecasts over the label's span, per row of ``X``."""
        frame, out = self._predict_raw(X, dates)
        median = list(self.config.quantiles).index(0.5)
        forecast = out.output["prediction"][..., median].cpu().numpy()  # (n, h+1)
        index = out.index  # time_idx = first forecast step, symbol
        scored = pd.DataFrame({"symbol": index["symbol"].astype(str).to_numpy(),
                               "time_idx": index["time_idx"].to_numpy() - 1,
                               "score": forecast[:, 1:].sum(axis=1)})
        rows = frame[["symbol", "time_idx", "row"]].merge(scored, on=["symbol", "time_idx"])
        score = np.full(len(X), np.nan)
        score[rows["row"].to_numpy()] = rows["score"].to_numpy()
        return score

    def importance(self, X: pd.DataFrame, *, dates: ArrayLike) -> dict:
        """Encoder variable importance and attention over encoder lags (TFT's own
        interpretation), averaged over the windows that end at rows of ``X``."""
        _, out = self._predict_raw(X, dates)
        interp = self.model_.interpret_output(out.output, reduction="sum")
        enc = interp["encoder_variables"].cpu().numpy()
        names = list(self.model_.encoder_variables)
        attention = interp["attention"].cpu().numpy()
        return {
            "encoder_variables": dict(sorted(
                zip(names, (enc / enc.sum()).round(6).tolist(), strict=True),
                key=lambda kv: -kv[1])),
            "attention_by_lag": (attention / attention.sum()).round(6).tolist(),
        }
