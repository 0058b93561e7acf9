"""Typed parameters: ``params.yaml`` is the single source of truth.

Every section is required and has no code-side defaults, so the file a user edits (and DVC
tracks) is the whole configuration. Bad values stop the program at start with the key path
and the allowed range, before anything reads data or touches the ledger.
"""

from __future__ import annotations

import datetime as dt
import typing
from pathlib import Path
from typing import Annotated, Literal

import annotated_types as at
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from alphaline.errors import ConfigError
from alphaline.secrets import mask_secrets, refuse_secret

# Hard ceilings on risk limits: a configuration mistake cannot lift them. Every limit in
# ``risk:`` is bounded by one of these.
HARD_MAX_GROSS = 3.0
HARD_MAX_NET = 0.5
HARD_MAX_POSITION_WEIGHT = 0.25
HARD_MAX_SECTOR_EXPOSURE = 0.5  # |net| weight of one sector
HARD_MAX_BETA_EXPOSURE = 0.5  # |Σ weight × beta|
HARD_MAX_ORDER_NOTIONAL = 5_000_000.0  # dollars in one order
HARD_MAX_PRICE_BAND = 0.5
HARD_MAX_PARTICIPATION = 0.20  # of a name's average daily volume
HARD_MAX_FAT_FINGER_MULTIPLE = 50.0  # × the name's typical order
HARD_MAX_FAT_FINGER_ADV = 1.0  # a whole day's volume in one order
HARD_MAX_ORDERS_PER_DAY = 10_000
HARD_MAX_DAILY_LOSS = 0.20
HARD_MAX_DRAWDOWN = 0.50
HARD_MAX_SLIPPAGE_RATIO = 10.0  # realized slippage over the cost model's estimate

PositiveFloat = Annotated[float, Field(gt=0)]
Fraction = Annotated[float, Field(gt=0, le=1)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FilesParams(_Section):
    path: str


class YFinanceParams(_Section):
    symbols: Annotated[list[str], Field(min_length=1)]
    base_url: str


class SyntheticParams(_Section):
    n_symbols: Annotated[int, Field(ge=5, le=5000)]
    seed: Annotated[int, Field(ge=0)]
    mode: Literal["alpha", "noise"]
    alpha_strength: Annotated[float, Field(ge=0, le=0.5)]
    alpha_until: dt.date | None  # a regime change: the planted alpha is off after this day


class DataParams(_Section):
    source: Literal["synthetic", "files", "yfinance"]
    start: dt.date
    end: dt.date
    calendar: str
    files: FilesParams
    yfinance: YFinanceParams
    synthetic: SyntheticParams

    @model_validator(mode="after")
    def _ordered(self) -> DataParams:
        if self.end <= self.start:
            raise ValueError(f"data.end ({self.end}) must come after data.start ({self.start})")
        return self


class ValidationParams(_Section):
    max_abs_daily_return: Annotated[float, Field(gt=0, le=5)]
    # A move beyond the limit that the next close undoes to within this of the close before
    # it is a bad tick; one that persists is real (a warning) unless it looks like a split.
    revert_tolerance: Annotated[float, Field(gt=0, le=0.5)]
    split_factors: Annotated[list[Annotated[float, Field(gt=1, le=100)]], Field(min_length=1)]
    split_tolerance: Annotated[float, Field(gt=0, le=0.1)]
    max_staleness_days: Annotated[int, Field(ge=0, le=30)]
    on_symbol_failure: Literal["quarantine_symbol", "stop_batch"]


class CrossSectionParams(_Section):
    method: Literal["none", "rank", "zscore"]
    winsorize: Annotated[float, Field(ge=0, lt=0.5)]
    neutralize: list[Literal["market", "sector"]]


class WorkersParams(_Section):
    runner: Literal["none", "dask"]
    workers: Annotated[int, Field(ge=1, le=256)]


class ParallelParams(_Section):
    runner: Literal["none", "dask"]
    workers: Annotated[int, Field(ge=1, le=256)]
    chunks: Annotated[int, Field(ge=1, le=10000)]


class FeatureParams(_Section):
    label_horizon: Annotated[int, Field(ge=1, le=60)]
    sets: Annotated[list[Literal["core", "alpha158", "technical", "risk", "liquidity"]],
                    Field(min_length=1)]
    benchmark: str | None
    garch_refit_every: Annotated[int, Field(ge=5, le=2520)]
    cross_section: CrossSectionParams
    parallel: ParallelParams

    @model_validator(mode="after")
    def _unique_sets(self) -> FeatureParams:
        if len(set(self.sets)) != len(self.sets):
            raise ValueError(f"features.sets lists a set twice: {self.sets}")
        return self


class CVParams(_Section):
    n_splits: Annotated[int, Field(ge=2, le=50)]
    embargo_days: Annotated[int, Field(ge=0, le=60)]
    min_train_days: Annotated[int, Field(ge=20)]
    cpcv_groups: Annotated[int, Field(ge=3, le=20)]
    cpcv_test_groups: Annotated[int, Field(ge=1, le=10)]
    parallel: WorkersParams

    @model_validator(mode="after")
    def _fewer_test_groups(self) -> CVParams:
        if self.cpcv_test_groups >= self.cpcv_groups:
            raise ValueError(f"cpcv_test_groups ({self.cpcv_test_groups}) must be below "
                             f"cpcv_groups ({self.cpcv_groups})")
        return self


class _Range(_Section):
    log: bool

    @model_validator(mode="after")
    def _ordered(self) -> _Range:
        if not self.low < self.high:  # type: ignore[attr-defined]
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")  # type: ignore[attr-defined]
        if self.log and self.low <= 0:  # type: ignore[attr-defined]
            raise ValueError("a log-scale range needs low > 0")
        return self


class IntRange(_Range):
    low: Annotated[int, Field(ge=1)]
    high: Annotated[int, Field(ge=1)]


class FloatRange(_Range):
    low: Annotated[float, Field(ge=0)]
    high: Annotated[float, Field(gt=0)]


class SearchSpace(_Section):
    """LightGBM member hyperparameters Optuna searches, in the order it suggests them."""

    learning_rate: FloatRange
    num_leaves: IntRange
    min_child_samples: IntRange
    feature_fraction: FloatRange
    bagging_fraction: FloatRange
    lambda_l2: FloatRange


class TuningParallelParams(WorkersParams):
    batch: Annotated[int, Field(ge=1, le=256)]


class TuningParams(_Section):
    n_trials: Annotated[int, Field(ge=1, le=10000)]
    seed: Annotated[int, Field(ge=0)]
    timeout_s: Annotated[int, Field(ge=1)]
    pruner_startup_trials: Annotated[int, Field(ge=0, le=1000)]
    search_space: SearchSpace
    parallel: TuningParallelParams
    date_stride: Annotated[int, Field(ge=1, le=20)]


class SampleWeightParams(_Section):
    uniqueness: bool
    half_life_days: Annotated[float, Field(gt=0)] | None


class MetaLabelParams(_Section):
    enabled: bool
    threshold: Annotated[float, Field(ge=0, lt=1)]
    n_estimators: Annotated[int, Field(ge=10, le=5000)]
    num_leaves: Annotated[int, Field(ge=2, le=1024)]
    min_child_samples: Annotated[int, Field(ge=1)]
    learning_rate: Annotated[float, Field(gt=0, le=1)]
    min_train_dates: Annotated[int, Field(ge=5)]


class LambdaRankParams(_Section):
    levels: Annotated[int, Field(ge=2, le=31)]
    truncation: Annotated[int, Field(ge=1, le=10000)]


class TFTSearchSpace(_Section):
    """TFT hyperparameters Optuna searches (``model.tft.search``), in the order it suggests
    them; each name is a ``TFTConfig`` field. Sizes are choices (TPE treats them as
    categories), the rest ranges within the bounds ``model.tft`` itself accepts."""

    hidden_size: Annotated[list[Annotated[int, Field(ge=4, le=512)]], Field(min_length=1)]
    attention_heads: Annotated[list[Annotated[int, Field(ge=1, le=16)]], Field(min_length=1)]
    dropout: FloatRange
    learning_rate: FloatRange
    encoder_days: IntRange
    gradient_clip: FloatRange

    @model_validator(mode="after")
    def _within_model_bounds(self) -> TFTSearchSpace:
        for key in ("hidden_size", "attention_heads"):
            values = getattr(self, key)
            if len(set(values)) != len(values):
                raise ValueError(f"model.tft.search.{key} lists a value twice: {values}")
        # pytorch-forecasting gives each head hidden_size // heads dimensions: a head count
        # above a hidden size leaves heads of width 0, so every pair drawn must have one
        if max(self.attention_heads) > min(self.hidden_size):
            raise ValueError(f"model.tft.search: attention_heads up to "
                             f"{max(self.attention_heads)} exceed the smallest hidden_size "
                             f"{min(self.hidden_size)} (each head gets hidden_size // heads "
                             f"dimensions)")
        if self.dropout.high >= 1:
            raise ValueError(f"model.tft.search.dropout.high must be below 1, got "
                             f"{self.dropout.high}")
        if self.learning_rate.low <= 0 or self.learning_rate.high > 1:
            raise ValueError(f"model.tft.search.learning_rate must lie in (0, 1], got "
                             f"{self.learning_rate.low} .. {self.learning_rate.high}")
        if self.encoder_days.low < 5 or self.encoder_days.high > 252:
            raise ValueError(f"model.tft.search.encoder_days must lie in 5 .. 252, got "
                             f"{self.encoder_days.low} .. {self.encoder_days.high}")
        if self.gradient_clip.low <= 0:
            raise ValueError(f"model.tft.search.gradient_clip.low must be above 0, got "
                             f"{self.gradient_clip.low}")
        return self


class TFTParams(_Section):
    enabled: bool
    stack: bool  # also offer the gate the stack of the trees and the TFT
    device: Literal["cpu", "cuda", "auto"]
    encoder_days: Annotated[int, Field(ge=5, le=252)]
    hidden_size: Annotated[int, Field(ge=4, le=512)]
    attention_heads: Annotated[int, Field(ge=1, le=16)]
    epochs: Annotated[int, Field(ge=1, le=200)]
    batch_size: Annotated[int, Field(ge=16, le=8192)]
    learning_rate: Annotated[float, Field(gt=0, le=1)]
    dropout: Annotated[float, Field(ge=0, lt=1)]
    gradient_clip: Annotated[float, Field(gt=0)]
    # an epoch's batches drawn at random (null: every window each epoch)
    batches_per_epoch: Annotated[int, Field(ge=1)] | None
    quantiles: Annotated[list[Annotated[float, Field(gt=0, lt=1)]], Field(min_length=1)]
    trials: Annotated[int, Field(ge=1, le=10000)]  # Optuna trials per run, its own study
    search: TFTSearchSpace

    @model_validator(mode="after")
    def _has_median(self) -> TFTParams:
        if 0.5 not in self.quantiles:
            raise ValueError(f"quantiles must include 0.5 (the score is the median "
                             f"forecast), got {self.quantiles}")
        if self.attention_heads > self.hidden_size:
            raise ValueError(f"model.tft.attention_heads ({self.attention_heads}) exceeds "
                             f"hidden_size ({self.hidden_size}): each head gets "
                             f"hidden_size // heads dimensions")
        return self


class ModelParams(_Section):
    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")]
    n_estimators: Annotated[int, Field(ge=10, le=5000)]
    objectives: Annotated[list[Literal["regression", "lambdarank", "binary"]],
                          Field(min_length=1)]
    seeds: Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=1)]
    stack_folds: Annotated[int, Field(ge=2, le=10)]
    redundancy_corr: Annotated[float, Field(gt=0, le=1)]
    keep_versions: Annotated[int, Field(ge=2, le=1000)]
    n_jobs: Annotated[int, Field(ge=1, le=256)]
    explain_top: Annotated[int, Field(ge=1, le=50)]
    lambdarank: LambdaRankParams
    sample_weights: SampleWeightParams
    meta_label: MetaLabelParams
    tft: TFTParams

    @model_validator(mode="after")
    def _distinct_members(self) -> ModelParams:
        for key in ("objectives", "seeds"):
            values = getattr(self, key)
            if len(set(values)) != len(values):
                raise ValueError(f"model.{key} lists a value twice: {values}")
        return self


class FeatureValidationParams(_Section):
    dead_std: Annotated[float, Field(ge=0)]
    correlated_abs: Annotated[float, Field(gt=0, le=1)]
    leak_label_corr: Annotated[float, Field(gt=0, le=1)]
    leak_importance_ratio: Annotated[float, Field(gt=1)]
    leak_min_share: Annotated[float, Field(gt=0, le=1)]


class GateParams(_Section):
    min_deflated_sharpe: Annotated[float, Field(ge=0, le=1)]
    min_rank_ic: Annotated[float, Field(ge=-1, le=1)]
    min_improvement: Annotated[float, Field(ge=0, le=1)]
    # the last share of sessions: never seen by tuning, the gate's CPCV test groups lie there
    holdout_fraction: Annotated[float, Field(ge=0.1, le=0.6)]
    significance: Annotated[float, Field(gt=0, le=0.5)]  # paired bootstrap, one-sided
    bootstrap_draws: Annotated[int, Field(ge=200, le=100_000)]
    # annualized after-cost Sharpe the challenger must add over the best baseline; null: off
    min_lift_over_baseline: Annotated[float | None, Field(ge=-5, le=5)]


class RebalanceParams(_Section):
    # Grinold's alpha = IC × daily vol × score z-score sets the benefit a resize must beat.
    expected_ic: Annotated[float, Field(ge=0, le=0.5)]
    band: bool
    min_trade_notional: Annotated[float, Field(ge=0, le=1e7)]


class PortfolioParams(_Section):
    method: Literal["quantile_long_short", "long_only_top_k", "meta_sized_long_short"]
    weighting: Literal["equal", "inverse_volatility", "risk_parity", "hrp"]
    quantile: Annotated[float, Field(gt=0, le=0.5)]
    top_k: Annotated[int, Field(ge=1, le=5000)]
    gross_exposure: Annotated[float, Field(gt=0, le=HARD_MAX_GROSS)]
    max_position_weight: Annotated[float, Field(gt=0, le=HARD_MAX_POSITION_WEIGHT)]
    covariance_lookback: Annotated[int, Field(ge=20, le=2520)]
    vol_target: Annotated[float, Field(gt=0, le=2)] | None
    kelly_fraction: Annotated[float, Field(gt=0, le=1)] | None
    beta_neutral: bool
    max_beta_exposure: Annotated[float, Field(ge=0, le=HARD_MAX_NET)]
    sector_neutral: bool
    max_sector_net: Annotated[float, Field(ge=0, le=HARD_MAX_NET)]
    rebalance: RebalanceParams

    @model_validator(mode="after")
    def _neutral_needs_two_legs(self) -> PortfolioParams:
        if self.method == "long_only_top_k" and (self.beta_neutral or self.sector_neutral):
            raise ValueError("a long-only book cannot be beta or sector neutral: use a "
                             "long/short method or turn neutrality off")
        return self


class VelocityTier(_Section):
    """A speed of loss (NAV lost per session over the lookback) and the book's response:
    target weights × ``scale``; in the last tier every held position × ``scale`` (the rest
    sold) and the state goes to REDUCING."""

    name: Annotated[str, Field(min_length=1)]
    loss_per_session: Annotated[float, Field(gt=0, le=HARD_MAX_DAILY_LOSS)]
    scale: Annotated[float, Field(ge=0, le=1)]


class DrawdownVelocityParams(_Section):
    lookback_sessions: Annotated[int, Field(ge=2, le=60)]
    min_drawdown: Annotated[float, Field(ge=0, le=HARD_MAX_DRAWDOWN)]
    tiers: Annotated[list[VelocityTier], Field(min_length=1, max_length=10)]

    @model_validator(mode="after")
    def _tiers_escalate(self) -> DrawdownVelocityParams:
        # Faster losses must never get a milder response than slower ones.
        for slow, fast in zip(self.tiers, self.tiers[1:], strict=False):
            if not (fast.loss_per_session > slow.loss_per_session and fast.scale <= slow.scale):
                raise ValueError(f"tier {fast.name!r} must be faster than {slow.name!r} "
                                 f"with a scale no higher")
        if self.tiers[-1].scale >= 1:
            raise ValueError(f"the last tier ({self.tiers[-1].name!r}) must close part of "
                             f"every position (scale < 1)")
        if len({t.name for t in self.tiers}) != len(self.tiers):
            raise ValueError("tier names must be distinct")
        return self


class KillSwitchParams(_Section):
    max_daily_loss: Annotated[float, Field(gt=0, le=HARD_MAX_DAILY_LOSS)]
    max_drawdown: Annotated[float, Field(gt=0, le=HARD_MAX_DRAWDOWN)]
    max_slippage_ratio: Annotated[float, Field(ge=1, le=HARD_MAX_SLIPPAGE_RATIO)]
    velocity: DrawdownVelocityParams


class RiskReportParams(_Section):
    confidence: Annotated[float, Field(ge=0.9, le=0.999)]
    history_sessions: Annotated[int, Field(ge=20, le=2520)]
    monte_carlo_draws: Annotated[int, Field(ge=1000, le=1_000_000)]
    seed: Annotated[int, Field(ge=0)]
    top_names: Annotated[int, Field(ge=1, le=100)]


class RiskParams(_Section):
    max_gross_exposure: Annotated[float, Field(gt=0, le=HARD_MAX_GROSS)]
    max_net_exposure: Annotated[float, Field(ge=0, le=HARD_MAX_NET)]
    max_position_weight: Annotated[float, Field(gt=0, le=HARD_MAX_POSITION_WEIGHT)]
    max_sector_exposure: Annotated[float, Field(gt=0, le=HARD_MAX_SECTOR_EXPOSURE)]
    max_beta_exposure: Annotated[float, Field(ge=0, le=HARD_MAX_BETA_EXPOSURE)]
    max_order_notional: Annotated[float, Field(gt=0, le=HARD_MAX_ORDER_NOTIONAL)]
    min_order_notional: Annotated[float, Field(ge=0, le=HARD_MAX_ORDER_NOTIONAL)]
    price_band: Annotated[float, Field(gt=0, le=HARD_MAX_PRICE_BAND)]
    fat_finger_multiple: Annotated[float, Field(gt=1, le=HARD_MAX_FAT_FINGER_MULTIPLE)]
    typical_order_count: Annotated[int, Field(ge=1, le=1000)]
    fat_finger_adv: Annotated[float, Field(gt=0, le=HARD_MAX_FAT_FINGER_ADV)]
    max_participation: Annotated[float, Field(gt=0, le=HARD_MAX_PARTICIPATION)]
    max_orders_per_day: Annotated[int, Field(ge=1, le=HARD_MAX_ORDERS_PER_DAY)]
    kill_switches: KillSwitchParams
    report: RiskReportParams

    @model_validator(mode="after")
    def _consistent(self) -> RiskParams:
        if self.min_order_notional >= self.max_order_notional:
            raise ValueError(f"min_order_notional ({self.min_order_notional}) must be below "
                             f"max_order_notional ({self.max_order_notional})")
        if self.fat_finger_adv <= self.max_participation:
            raise ValueError(f"fat_finger_adv ({self.fat_finger_adv}) must exceed "
                             f"max_participation ({self.max_participation}): a fat finger is "
                             f"an order far beyond what participation allows")
        return self


class ExecutionParams(_Section):
    """How an order is worked (trading/execution.py): by its size against the name's ADV."""

    algo_participation: Annotated[float, Field(gt=0, le=1)]  # from here: TWAP/VWAP (``algo``)
    ac_participation: Annotated[float, Field(gt=0, le=1)]  # from here: Almgren–Chriss
    algo: Literal["TWAP", "VWAP"]
    risk_aversion: Annotated[float, Field(ge=0, le=1)]  # Almgren–Chriss λ, per dollar
    bins: Annotated[int, Field(ge=1, le=390)]  # equal intervals of the session
    steps_per_bin: Annotated[int, Field(ge=1, le=100)]  # intraday price path resolution
    profile_ends_over_middle: Annotated[float, Field(ge=1, le=20)]  # the U-shaped volume
    seed: Annotated[int, Field(ge=0)]  # the paper broker's intraday paths

    @model_validator(mode="after")
    def _ordered(self) -> ExecutionParams:
        if self.ac_participation < self.algo_participation:
            raise ValueError(f"ac_participation ({self.ac_participation}) must be at least "
                             f"algo_participation ({self.algo_participation}): the "
                             "Almgren–Chriss schedule is for the largest orders")
        return self


class IbkrReconcileParams(_Section):
    """How far the ledger may differ from the account before trading halts: a difference
    within these is booked as an adjustment with its cause, one beyond halts."""

    position_tolerance_shares: Annotated[float, Field(ge=0, le=100)]
    cash_tolerance: Annotated[float, Field(ge=0, le=10_000)]


class IbkrParams(_Section):
    """Interactive Brokers (trading/brokers/ibkr.py). Host, port, client id and account come
    from the environment, never from here; ``live: true`` is one of the two switches real
    money needs (the other is ``ALPHALINE_IBKR_LIVE_CONFIRM``)."""

    live: bool
    connect_attempts: Annotated[int, Field(ge=1, le=20)]
    backoff_seconds: Annotated[float, Field(gt=0, le=60)]  # first wait; doubles per try
    connect_timeout_seconds: Annotated[float, Field(gt=0, le=120)]
    max_disconnect_s: Annotated[float, Field(gt=0, le=3600)]  # longer: broker kill switch
    ack_timeout_seconds: Annotated[float, Field(gt=0, le=120)]
    # client-side pacing (TWS allows 50 messages a second); 0: TWS paces (+PACEAPI)
    requests_per_second: Annotated[int, Field(ge=0, le=50)]
    small_order_type: Literal["MOC", "LMT"]  # the MOC style's orders: on close, or a limit
    limit_offset_bps: Annotated[float, Field(ge=0, le=1000)]  # LMT: reference ± this
    vwap_max_pct_volume: Annotated[float, Field(gt=0, le=0.5)]
    adaptive_priority: Literal["Patient", "Normal", "Urgent"]  # the AC style's urgency
    reconcile: IbkrReconcileParams


class BrokerParams(_Section):
    kind: Literal["paper", "ibkr"]
    initial_cash: PositiveFloat
    commission_per_share: Annotated[float, Field(ge=0, le=1)]
    commission_min: Annotated[float, Field(ge=0, le=1000)]
    half_spread_bps: Annotated[float, Field(ge=0, le=500)]
    impact_coefficient: Annotated[float, Field(ge=0, le=10)]
    borrow_rate: Annotated[float, Field(ge=0, le=1)]
    lot_size: Annotated[int, Field(ge=1, le=10000)]
    ibkr: IbkrParams
    execution: ExecutionParams


EnvName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


class DecayParams(_Section):
    # CUSUM alarm level in log-likelihood units: false alarms about once per e^threshold
    # sessions; detection delay about threshold / ((1 - decayed_fraction)² × ICIR² / 2).
    threshold: Annotated[float, Field(gt=0, le=50)]
    decayed_fraction: Annotated[float, Field(ge=0, lt=1)]


class DriftParams(_Section):
    psi_threshold: Annotated[float, Field(gt=0, le=10)]
    lookback_days: Annotated[int, Field(ge=5, le=250)]
    bins: Annotated[int, Field(ge=2, le=100)]
    ks_fdr: Annotated[float, Field(gt=0, le=0.5)]
    min_feature_share: Fraction
    cooldown_sessions: Annotated[int, Field(ge=0, le=250)]
    decay: DecayParams


class AlertParams(_Section):
    """Where alerts go: a saved Prefect notification block, or a webhook whose URL (a secret:
    webhook URLs carry tokens) is read from the named environment variable."""

    block: str | None
    webhook_url_env: EnvName | None


class ScheduleParams(_Section):
    timezone: str
    daily_trading_cron: str
    drift_check_cron: str
    retrain_rrule: str
    # The close's bars must be final before the day is traded: exchange close + this delay.
    settle_delay_minutes: Annotated[int, Field(ge=0, le=720)]
    # A crashed holder's lock lapses after this; a live holder renews it every third of it.
    lock_timeout_minutes: Annotated[int, Field(ge=1, le=1440)]


class TradingParams(_Section):
    # Sessions a held name may go without a bar (marked stale at its last price) before it is
    # reported as a suspected delisting.
    delisting_after_sessions: Annotated[int, Field(ge=1, le=250)]


class StorageParams(_Section):
    """Where the ledger, MLflow and Optuna live. params.yaml is tracked and printed, so a URL
    with a password is refused here: name the environment variable that holds it (``*_env``)."""

    ledger_url: str | None
    ledger_url_env: EnvName | None
    mlflow_tracking_uri: str | None
    mlflow_tracking_uri_env: EnvName | None
    optuna_url: str | None
    optuna_url_env: EnvName | None

    @field_validator("ledger_url", "mlflow_tracking_uri", "optuna_url")
    @classmethod
    def _no_password(cls, url: str | None, info: ValidationInfo) -> str | None:
        refuse_secret(f"storage.{info.field_name}", url)
        return url

    @model_validator(mode="after")
    def _one_source(self) -> StorageParams:
        for key in ("ledger_url", "mlflow_tracking_uri", "optuna_url"):
            if getattr(self, key) is not None and getattr(self, f"{key}_env") is not None:
                raise ValueError(f"storage.{key} and storage.{key}_env are both set: "
                                 "keep one (the variable holds the URL)")
        return self


def _book_breaches(p: Params) -> list[str]:
    """Ways the book these params build could breach a risk limit (the risk engine would then
    refuse a freshly built book): each a sentence naming both keys."""
    book, risk = p.portfolio, p.risk
    out = []
    if book.method == "long_only_top_k" and book.gross_exposure > risk.max_net_exposure:
        out.append(f"portfolio.method long_only_top_k holds net = gross_exposure "
                   f"({book.gross_exposure}), above risk.max_net_exposure "
                   f"({risk.max_net_exposure})")
    if book.beta_neutral and book.max_beta_exposure > risk.max_beta_exposure:
        out.append(f"portfolio.max_beta_exposure ({book.max_beta_exposure}) exceeds "
                   f"risk.max_beta_exposure ({risk.max_beta_exposure})")
    if book.sector_neutral and book.max_sector_net > risk.max_sector_exposure:
        out.append(f"portfolio.max_sector_net ({book.max_sector_net}) exceeds "
                   f"risk.max_sector_exposure ({risk.max_sector_exposure})")
    if book.rebalance.min_trade_notional < risk.min_order_notional:
        out.append(f"portfolio.rebalance.min_trade_notional ({book.rebalance.min_trade_notional})"
                   f" is below risk.min_order_notional ({risk.min_order_notional})")
    first_order = p.broker.initial_cash * book.max_position_weight
    if first_order > risk.max_order_notional:
        out.append(f"a first position of broker.initial_cash × portfolio.max_position_weight "
                   f"({first_order:,.0f}) exceeds risk.max_order_notional "
                   f"({risk.max_order_notional:,.0f})")
    if p.data.source == "synthetic" and p.data.synthetic.n_symbols > risk.max_orders_per_day:
        out.append(f"data.synthetic.n_symbols ({p.data.synthetic.n_symbols}) could all trade "
                   f"in one day, above risk.max_orders_per_day ({risk.max_orders_per_day})")
    return out


class Params(_Section):
    data: DataParams
    validation: ValidationParams
    features: FeatureParams
    cv: CVParams
    tuning: TuningParams
    model: ModelParams
    feature_validation: FeatureValidationParams
    gate: GateParams
    portfolio: PortfolioParams
    risk: RiskParams
    broker: BrokerParams
    drift: DriftParams
    alerts: AlertParams
    schedule: ScheduleParams
    trading: TradingParams
    storage: StorageParams

    @model_validator(mode="after")
    def _portfolio_within_risk(self) -> Params:
        # The target portfolio must be one the risk engine would accept.
        if self.portfolio.gross_exposure > self.risk.max_gross_exposure:
            raise ValueError(
                f"portfolio.gross_exposure ({self.portfolio.gross_exposure}) exceeds "
                f"risk.max_gross_exposure ({self.risk.max_gross_exposure})"
            )
        if self.portfolio.max_position_weight > self.risk.max_position_weight:
            raise ValueError(
                f"portfolio.max_position_weight ({self.portfolio.max_position_weight}) exceeds "
                f"risk.max_position_weight ({self.risk.max_position_weight})"
            )
        for problem in _book_breaches(self):
            raise ValueError(problem)
        return self

    def with_overrides(self, overrides: dict[str, object]) -> Params:
        """A copy with dotted-key overrides (``{"data.synthetic.seed": 3}``), validated again."""
        raw = self.model_dump(mode="json")
        for key, value in overrides.items():
            node = raw
            *parents, leaf = key.split(".")
            for part in parents:
                node = node[part]
            if leaf not in node:
                raise ConfigError(f"unknown parameter {key!r}")
            node[leaf] = value
        return parse_params(raw, source="<overrides>")


def _allowed(model: type[BaseModel], loc: tuple[object, ...]) -> str | None:
    """Describe the allowed values of the field at ``loc``, read from its declaration."""
    field_info = None
    current: type | None = model
    for part in loc:
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field_info = current.model_fields.get(str(part))
        if field_info is None:
            return None
        current = field_info.annotation
    if field_info is None:
        return None
    annotation = field_info.annotation
    if typing.get_origin(annotation) is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(annotation))
    bounds = []
    for meta in field_info.metadata:
        for attr, symbol in (("gt", ">"), ("ge", "≥"), ("lt", "<"), ("le", "≤")):
            if isinstance(meta, getattr(at, attr.capitalize())):
                bounds.append(f"{symbol} {getattr(meta, attr)}")
    name = getattr(annotation, "__name__", str(annotation))
    return f"{name} " + " and ".join(bounds) if bounds else name


def _describe(exc: ValidationError, source: str) -> str:
    lines = [f"{source}: invalid parameters"]
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not isinstance(p, int))
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        if err["type"] == "extra_forbidden":
            lines.append(f"  {key}: unknown key")
            continue
        allowed = _allowed(Params, loc)
        # An input may hold a URL with a password: the message is printed, so mask it.
        got = "" if err["type"] == "missing" else f" (got {mask_secrets(err.get('input'))!r})"
        hint = f"; allowed: {allowed}" if allowed else ""
        lines.append(f"  {key}: {err['msg']}{got}{hint}")
    return "\n".join(lines)


def parse_params(raw: object, source: str = "params.yaml") -> Params:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source)) from None


def load_params(path: str | Path) -> Params:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: parameter file not found")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    return parse_params(raw, source=str(path))
