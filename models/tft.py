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


@dataclass
class TFTConfig:
    horizon: int
    encoder_days: int = 30
    hidden_size: int = 16
    attention_heads: int = 2
    epochs: int = 3
    batch_size: int = 256
    learning_rate: float = 0.01
    quantiles: tuple[float, ...] = (0.1, 0.5, 0.9)
    device: str = "auto"
    seed: int = 0
    dropout: float = 0.1


class TFTForecaster:
    """fit/predict on a panel ``symbol, date, ret, <features>`` (sessions contiguous per
    symbol). ``predict`` scores the rows of the dates asked for."""

    def __init__(self, config: TFTConfig, features: list[str]):
        self.config = config
        self.features = list(features)

    def _frame(self, panel: pd.DataFrame) -> pd.DataFrame:
        f = panel.sort_values(["symbol", "date"]).reset_index(drop=True)
        sessions = np.unique(f["date"].to_numpy())
        f["time_idx"] = np.searchsorted(sessions, f["date"].to_numpy()).astype("int64")
        f["symbol"] = f["symbol"].astype(str)
        f[self.features] = f[self.features].astype("float32").fillna(0.0)
        f["ret"] = f["ret"].astype("float32")
        return f

    def _dataset(self, frame: pd.DataFrame, **kwargs):
        from pytorch_forecasting import TimeSeriesDataSet
        from pytorch_forecasting.data import EncoderNormalizer

        c = self.config
        return TimeSeriesDataSet(
            frame, time_idx="time_idx", target="ret", group_ids=["symbol"],
            max_encoder_length=c.encoder_days, min_encoder_length=c.encoder_days,
            max_prediction_length=c.horizon + 1, min_prediction_length=c.horizon + 1,
            time_varying_unknown_reals=["ret", *self.features],
            target_normalizer=EncoderNormalizer(), add_relative_time_idx=True,
            allow_missing_timesteps=True, **kwargs)

    def fit(self, panel: pd.DataFrame) -> TFTForecaster:
        import lightning.pytorch as pl
        from pytorch_forecasting import TemporalFusionTransformer
        from pytorch_forecasting.metrics import QuantileLoss

        c = self.config
        pl.seed_everything(c.seed, workers=True, verbose=False)
        frame = self._frame(panel)
        self.dataset_ = self._dataset(frame)
        loader = self.dataset_.to_dataloader(train=True, batch_size=c.batch_size,
                                             num_workers=0)
        self.model_ = TemporalFusionTransformer.from_dataset(
            self.dataset_, hidden_size=c.hidden_size, attention_head_size=c.attention_heads,
            hidden_continuous_size=max(c.hidden_size // 2, 4), dropout=c.dropout,
            learning_rate=c.learning_rate, loss=QuantileLoss(list(c.quantiles)),
            log_interval=-1)
        trainer = pl.Trainer(max_epochs=c.epochs, accelerator=accelerator(c.device),
                             devices=1, gradient_clip_val=0.1, logger=False,
                             enable_checkpointing=False, enable_progress_bar=False,
                             enable_model_summary=False, deterministic=True)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", ".*does not have many workers.*")
            trainer.fit(self.model_, train_dataloaders=loader)
        self.epoch_loss_ = float(trainer.callback_metrics.get("train_loss_epoch", np.nan))
        return self

    def _predict_raw(self, panel: pd.DataFrame, first_date: pd.Timestamp):
        frame = self._frame(panel)
        first_idx = int(frame.loc[frame["date"] >= first_date, "time_idx"].min())
        # windows whose first forecast step is the session after a scored date
        data = self._dataset(frame, min_prediction_idx=first_idx + 1)
        data = type(data).from_dataset(self.dataset_, frame, min_prediction_idx=first_idx + 1,
                                       stop_randomization=True)
        loader = data.to_dataloader(train=False, batch_size=self.config.batch_size * 4,
                                    num_workers=0)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", ".*does not have many workers.*")
            out = self.model_.predict(loader, mode="raw", return_index=True,
                                      trainer_kwargs={"accelerator": accelerator(
                                          self.config.device), "logger": False,
                                          "enable_progress_bar": False})
        return frame, out

    def predict(self, panel: pd.DataFrame, first_date: pd.Timestamp) -> pd.DataFrame:
        """``date, symbol, score`` for each scored date ≥ ``first_date`` with a full window."""
        frame, out = self._predict_raw(panel, first_date)
        if 0.5 not in self.config.quantiles:
            raise ValueError("the TFT scores with the median: quantiles must include 0.5")
        median = list(self.config.quantiles).index(0.5)
        forecast = out.output["prediction"][..., median].cpu().numpy()  # (n, h+1)
        score = forecast[:, 1:].sum(axis=1)
        index = out.index  # time_idx = first forecast step, symbol
        sessions = np.unique(frame["date"].to_numpy())
        scored = sessions[index["time_idx"].to_numpy() - 1]
        return pd.DataFrame({"date": scored, "symbol": index["symbol"].to_numpy(),
                             "score": score})

    def importance(self, panel: pd.DataFrame, first_date: pd.Timestamp) -> dict:
        """Encoder variable importance and attention over encoder lags (TFT's own
        interpretation), averaged over the windows scored from ``first_date``."""
        _, out = self._predict_raw(panel, first_date)
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
