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
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

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


def window_as_of(features: pd.DataFrame, bars: pd.DataFrame, day, sessions: int
                 ) -> pd.DataFrame:
    """``date, symbol, ret`` + the features of the last ``sessions`` sessions up to and
    including ``day`` (one encoder window per name): what a sequence model reads to score
    ``day``, from data known at its close."""
    day = pd.Timestamp(day)
    known = np.unique(features.loc[features["date"] <= day, "date"].to_numpy())[-sessions:]
    if len(known) == 0:
        return features.iloc[:0].assign(ret=pd.Series(dtype="float64"))
    b = bars[(bars["date"] <= day) & (bars["date"] >= known[0] - np.timedelta64(31, "D"))]
    rets = returns_panel(b[["symbol", "date", "close"]])
    window = features[features["date"].isin(known)]
    return window.merge(rets, on=["symbol", "date"], how="left").sort_values(
        ["date", "symbol"], ignore_index=True)


# Lightning's advice for training loops we do not run (validation, checkpoints, workers)
_LIGHTNING_NOISE = (".*does not have many workers.*", ".*is an instance of `nn.Module`.*",
                    ".*no `val_dataloader`.*", ".*ReduceLROnPlateau conditioned on metric.*",
                    ".*isinstance\\(treespec, LeafSpec\\).*",
                    # a window of constant returns (a halt): the normalizer floors its scale
                    ".*scale is below 1e-7.*")


@contextmanager
def quiet_lightning():
    with warnings.catch_warnings():
        for message in _LIGHTNING_NOISE:
            warnings.filterwarnings("ignore", message)
        yield


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
    batches_per_epoch: int | None = None  # None: every window each epoch; else a random draw


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
        # ``time_idx`` counts the sessions present in X, so a hole in X (a CPCV test block
        # and its purge, a long halt) would close up; a gap of more calendar days than the
        # decoder spans (plus a holiday week) starts a new series instead: no window
        # reaches across it and no target is filled in
        gap = f.groupby("symbol", sort=False)["date"].diff().dt.days.fillna(0).to_numpy()
        segment = pd.Series(gap > 2 * (self.config.horizon + 1) + 7).groupby(
            f["symbol"].to_numpy()).cumsum().to_numpy()
        f["series"] = f["symbol"] + "#" + segment.astype(str)
        return f

    def _dataset(self, frame: pd.DataFrame):
        from pytorch_forecasting import TimeSeriesDataSet
        from pytorch_forecasting.data import EncoderNormalizer, NaNLabelEncoder

        c = self.config
        return TimeSeriesDataSet(
            frame, time_idx="time_idx", target="ret", group_ids=["series"],
            categorical_encoders={"__group_id__series": NaNLabelEncoder(add_nan=True)},
            max_encoder_length=c.encoder_days, min_encoder_length=c.encoder_days,
            max_prediction_length=c.horizon + 1, min_prediction_length=c.horizon + 1,
            time_varying_unknown_reals=["ret", *self.features],
            # scaled by each window's own volatility but not shifted by its mean return: a
            # centred normalizer adds the trailing mean back to every forecast, which makes an
            # undertrained model's scores trailing momentum (a negative rank IC wherever
            # returns revert)
            target_normalizer=EncoderNormalizer(center=False), add_relative_time_idx=True,
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
        frame = self._frame(X, dates)
        self.dataset_ = self._dataset(frame)
        size = frame.groupby("series")["time_idx"].transform("size")
        longest = frame.loc[size == size.max(), "series"].iloc[0]
        self.template_ = frame[frame["series"] == longest].head(
            c.encoder_days + c.horizon + 2).reset_index(drop=True)
        loader = self.dataset_.to_dataloader(train=True, batch_size=c.batch_size,
                                             num_workers=0)
        with quiet_lightning():
            self.model_ = TemporalFusionTransformer.from_dataset(
                self.dataset_, hidden_size=c.hidden_size,
                attention_head_size=c.attention_heads,
                hidden_continuous_size=max(c.hidden_size // 2, 4), dropout=c.dropout,
                learning_rate=c.learning_rate, loss=QuantileLoss(list(c.quantiles)),
                log_interval=-1)
        trainer = pl.Trainer(max_epochs=c.epochs, accelerator=accelerator(c.device),
                             devices=1, gradient_clip_val=c.gradient_clip, logger=False,
                             limit_train_batches=c.batches_per_epoch or 1.0,
                             enable_checkpointing=False, enable_progress_bar=False,
                             enable_model_summary=False, deterministic=True)
        with quiet_lightning():
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
        last = frame.groupby("series", sort=False).tail(1)
        pad = pd.concat([last.assign(time_idx=last["time_idx"] + step, row=-1)
                         for step in range(1, self.config.horizon + 2)], ignore_index=True)
        pad[["ret", *self.features]] = 0.0
        padded = pd.concat([frame, pad], ignore_index=True)
        data = type(self.dataset_).from_dataset(self.dataset_, padded, stop_randomization=True)
        loader = data.to_dataloader(train=False, batch_size=self.config.batch_size * 4,
                                    num_workers=0)
        with quiet_lightning():
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
        index = out.index  # time_idx = first forecast step, series
        scored = pd.DataFrame({"series": index["series"].astype(str).to_numpy(),
                               "time_idx": index["time_idx"].to_numpy() - 1,
                               "score": forecast[:, 1:].sum(axis=1)})
        rows = frame[["series", "time_idx", "row"]].merge(scored, on=["series", "time_idx"])
        score = np.full(len(X), np.nan)
        score[rows["row"].to_numpy()] = rows["score"].to_numpy()
        return score

    def explain(self, X: pd.DataFrame, *, dates: ArrayLike, top: int
                ) -> tuple[list[list[dict]], list[list[float] | None]]:
        """Per row of ``X``: its ``top`` encoder variables by the TFT's variable-selection
        weight (``feature, weight``, summing to 1 over all variables) and its attention over
        the encoder sessions (oldest first, the scored session last); empty and None for a
        row without a full encoder window. The TFT's own interpretation, as SHAP is the
        trees'."""
        frame, out = self._predict_raw(X, dates)
        interp = self.model_.interpret_output(out.output, reduction="none")
        weights = interp["encoder_variables"].cpu().numpy()
        weights = weights / np.maximum(weights.sum(axis=1, keepdims=True), 1e-12)
        attention = interp["attention"].cpu().numpy()[:, :self.config.encoder_days]
        attention = attention / np.maximum(np.nansum(attention, axis=1, keepdims=True), 1e-12)
        names = list(self.model_.encoder_variables)
        index = out.index
        keyed = pd.DataFrame({"series": index["series"].astype(str).to_numpy(),
                              "time_idx": index["time_idx"].to_numpy() - 1,
                              "k": np.arange(len(index))})
        rows = frame[["series", "time_idx", "row"]].merge(keyed, on=["series", "time_idx"])
        reasons: list[list[dict]] = [[] for _ in range(len(X))]
        attn: list[list[float] | None] = [None] * len(X)
        for row, k in zip(rows["row"].to_numpy(), rows["k"].to_numpy(), strict=True):
            order = np.argsort(-weights[k])[:top]
            reasons[row] = [{"feature": names[j], "weight": round(float(weights[k, j]), 6)}
                            for j in order]
            attn[row] = np.nan_to_num(attention[k]).round(6).tolist()
        return reasons, attn

    def save(self, path: Path) -> Path:
        """Weights, hyperparameters and the dataset's encoders as one torch file, with a
        few rows of one series to rebuild the dataset from (not the training data)."""
        import torch

        check_is_fitted(self)
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        torch.save({"config": self.config, "features": self.features,
                    "dataset": self.dataset_.get_parameters(), "template": self.template_,
                    "hparams": dict(self.model_.hparams),
                    "state": self.model_.state_dict(),
                    "epoch_loss": self.epoch_loss_}, path / "tft.pt")
        return path

    @classmethod
    def load(cls, path: Path) -> TFTForecaster:
        """Read back what :meth:`save` wrote (a file this project wrote: it holds pickles)."""
        import torch
        from pytorch_forecasting import TemporalFusionTransformer, TimeSeriesDataSet

        saved = torch.load(Path(path) / "tft.pt", weights_only=False, map_location="cpu")
        model = cls(config=saved["config"], features=saved["features"])
        model.dataset_ = TimeSeriesDataSet.from_parameters(saved["dataset"], saved["template"])
        model.template_ = saved["template"]
        with quiet_lightning():
            model.model_ = TemporalFusionTransformer(**saved["hparams"])
        model.model_.load_state_dict(saved["state"])
        model.model_.eval()
        model.epoch_loss_ = saved["epoch_loss"]
        model.context_sessions_ = model.config.encoder_days
        return model

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
