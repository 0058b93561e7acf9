"""Ledger tables. Every state change of the trading loop is a row here before it happens."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class CashMovement(Base):
    __tablename__ = "cash_movements"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    day: Mapped[dt.date] = mapped_column(Date, nullable=False)
    amount: Mapped[float] = mapped_column(Float, nullable=False)
    note: Mapped[str] = mapped_column(String(200), nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False, default="capital")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now, nullable=False)


class Signal(Base):
    __tablename__ = "signals"
    __table_args__ = (UniqueConstraint("trading_day", "symbol", "model_version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    trading_day: Mapped[dt.date] = mapped_column(Date, nullable=False, index=True)
    symbol: Mapped[str] = mapped_column(String(32), nullable=False)
    score: Mapped[float] = mapped_column(Float, nullable=False)
    rank: Mapped[int] = mapped_column(Integer, nullable=False)
    model_name: Mapped[str] = mapped_column(String(100), nullable=False)
    model_version: Mapped[str] = mapped_column(String(32), nullable=False)
    # top SHAP contributions, or the TFT's top variable-selection weights (JSON)
    reasons: Mapped[str] = mapped_column(Text, nullable=False, default="[]")
    # the TFT's attention over its encoder sessions, oldest first (JSON; None for trees)
    attention: Mapped[str | None] = mapped_column(Text, nullable=True)
    probability: Mapped[float | None] = mapped_column(Float, nullable=True)  # meta-labeler
    bet_size: Mapped[float | None] = mapped_column(Float, nullable=True)  # side × probability
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now, nullable=False)


class Order(Base):
    __tablename__ = "orders"
    client_order_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    trading_day: Mapped[dt.date] = mapped_column(Date, nullable=False, index=True)
    symbol: Mapped[str] = mapped_column(String(32), nullable=False)
    intent: Mapped[str] = mapped_column(String(32), nullable=False)
    side: Mapped[str] = mapped_column(String(4), nullable=False)  # BUY | SELL
    quantity: Mapped[float] = mapped_column(Float, nullable=False)  # shares, > 0
    reference_price: Mapped[float] = mapped_column(Float, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    reject_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    broker: Mapped[str] = mapped_column(String(32), nullable=False)
    model_version: Mapped[str | None] = mapped_column(String(32), nullable=True)
    sequence: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    time_in_force: Mapped[str] = mapped_column(String(8), nullable=False, default="DAY")
    expires_on: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    approved: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    filled_quantity: Mapped[float] = mapped_column(Float, nullable=False, default=0.0)
    # how the broker works it (trading/execution.py::execution_style): MOC | TWAP | VWAP | AC
    execution_style: Mapped[str] = mapped_column(String(8), nullable=False, default="MOC")
    # the cost model's half spread + impact at the decision (arrival price, that day's σ, ADV)
    estimated_slippage: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now, nullable=False)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now, onupdate=_now,
                                                    nullable=False)


class OrderEvent(Base):
    """One transition of an order's state, with when and why (the order's whole life)."""

    __tablename__ = "order_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    client_order_id: Mapped[str] = mapped_column(ForeignKey("orders.client_order_id"),
                                                 nullable=False, index=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now, nullable=False)
    from_status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    to_status: Mapped[str] = mapped_column(String(16), nullable=False)
    cause: Mapped[str] = mapped_column(Text, nullable=False)


class RiskEvent(Base):
    """A change of the trading state (ACTIVE | REDUCING | HALTED): the newest row is the
    current state."""

    __tablename__ = "risk_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now, nullable=False)
    day: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    state: Mapped[str] = mapped_column(String(16), nullable=False)
    reason: Mapped[str] = mapped_column(Text, nullable=False)
    actor: Mapped[str] = mapped_column(String(100), nullable=False)  # a person or a rule


class CorporateAction(Base):
    """A split (``value``: new shares per old share) or a cash dividend (``value``: cash per
    share), from the data source's records."""

    __tablename__ = "corporate_actions"
    __table_args__ = (UniqueConstraint("day", "symbol", "kind"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    day: Mapped[dt.date] = mapped_column(Date, nullable=False)
    symbol: Mapped[str] = mapped_column(String(32), nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)  # split | dividend
    value: Mapped[float] = mapped_column(Float, nullable=False)
    source: Mapped[str] = mapped_column(String(200), nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now, nullable=False)


class PositionAdjustment(Base):
    """A change of holdings or cash that is not a fill: a split's shares, a dividend's cash
    (a short position pays it), each tied to its cause."""

    __tablename__ = "position_adjustments"
    __table_args__ = (UniqueConstraint("corporate_action_id", "symbol"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    day: Mapped[dt.date] = mapped_column(Date, nullable=False, index=True)
    symbol: Mapped[str] = mapped_column(String(32), nullable=False)
    quantity: Mapped[float] = mapped_column(Float, nullable=False)  # shares added (signed)
    cash: Mapped[float] = mapped_column(Float, nullable=False)  # cash credited (signed)
    cost_basis: Mapped[float] = mapped_column(Float, nullable=False)  # basis change, $
    cause: Mapped[str] = mapped_column(Text, nullable=False)
    corporate_action_id: Mapped[int | None] = mapped_column(
        ForeignKey("corporate_actions.id"), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now, nullable=False)


class Lock(Base):
    """Who holds the right to touch shared state (one of daily, retrain, drift) and until
    when: a crashed holder's lock expires instead of blocking forever."""

    __tablename__ = "locks"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200), nullable=False)
    acquired_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now, nullable=False)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False)


class Fill(Base):
    __tablename__ = "fills"
    fill_id: Mapped[str] = mapped_column(String(120), primary_key=True)
    client_order_id: Mapped[str] = mapped_column(ForeignKey("orders.client_order_id"),
                                                 nullable=False, index=True)
    day: Mapped[dt.date] = mapped_column(Date, nullable=False, index=True)
    symbol: Mapped[str] = mapped_column(String(32), nullable=False)
    quantity: Mapped[float] = mapped_column(Float, nullable=False)  # signed: + bought, - sold
    price: Mapped[float] = mapped_column(Float, nullable=False)
    commission: Mapped[float] = mapped_column(Float, nullable=False)
    slippage: Mapped[float] = mapped_column(Float, nullable=False)  # half-spread + impact, $
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now, nullable=False)


class Tca(Base):
    """Transaction-cost analysis of one order's fills (trading/tca.py), in dollars, positive
    a cost: ``shortfall`` (implementation shortfall against the arrival price, the decision
    close) = ``delay + drift + spread + impact + fees``."""

    __tablename__ = "tca"
    client_order_id: Mapped[str] = mapped_column(ForeignKey("orders.client_order_id"),
                                                 primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, nullable=False, index=True)  # filled on
    trading_day: Mapped[dt.date] = mapped_column(Date, nullable=False)  # decided on
    symbol: Mapped[str] = mapped_column(String(32), nullable=False)
    side: Mapped[str] = mapped_column(String(4), nullable=False)
    style: Mapped[str] = mapped_column(String(8), nullable=False)
    shares: Mapped[float] = mapped_column(Float, nullable=False)  # signed, filled
    arrival_price: Mapped[float] = mapped_column(Float, nullable=False)
    start_price: Mapped[float] = mapped_column(Float, nullable=False)  # when execution began
    average_fill: Mapped[float] = mapped_column(Float, nullable=False)
    delay: Mapped[float] = mapped_column(Float, nullable=False)
    drift: Mapped[float] = mapped_column(Float, nullable=False)
    spread: Mapped[float] = mapped_column(Float, nullable=False)
    impact: Mapped[float] = mapped_column(Float, nullable=False)
    fees: Mapped[float] = mapped_column(Float, nullable=False)
    shortfall: Mapped[float] = mapped_column(Float, nullable=False)
    estimated_slippage: Mapped[float] = mapped_column(Float, nullable=False)
    slippage_vs_estimate: Mapped[float] = mapped_column(Float, nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now, nullable=False)


class Position(Base):
    __tablename__ = "positions"
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    symbol: Mapped[str] = mapped_column(String(32), primary_key=True)
    quantity: Mapped[float] = mapped_column(Float, nullable=False)
    price: Mapped[float] = mapped_column(Float, nullable=False)
    market_value: Mapped[float] = mapped_column(Float, nullable=False)
    price_day: Mapped[dt.date | None] = mapped_column(Date, nullable=True)  # the price's date
    stale_sessions: Mapped[int] = mapped_column(Integer, nullable=False, default=0)


class DailyNav(Base):
    __tablename__ = "daily_nav"
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    cash: Mapped[float] = mapped_column(Float, nullable=False)
    long_value: Mapped[float] = mapped_column(Float, nullable=False)
    short_value: Mapped[float] = mapped_column(Float, nullable=False)
    nav: Mapped[float] = mapped_column(Float, nullable=False)
    gross_exposure: Mapped[float] = mapped_column(Float, nullable=False)
    net_exposure: Mapped[float] = mapped_column(Float, nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now, nullable=False)


class Control(Base):
    """Operator switches, e.g. ``trading_state`` = ACTIVE | HALTED."""

    __tablename__ = "controls"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(200), nullable=False)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now, onupdate=_now,
                                                    nullable=False)
