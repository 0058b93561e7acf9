"""Ledger tables. Every state change of the trading loop is a row here before it happens."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Date, DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint
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
    reasons: Mapped[str] = mapped_column(Text, nullable=False, default="[]")  # top SHAP, JSON
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
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now, nullable=False)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now, onupdate=_now,
                                                    nullable=False)


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


class Position(Base):
    __tablename__ = "positions"
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    symbol: Mapped[str] = mapped_column(String(32), primary_key=True)
    quantity: Mapped[float] = mapped_column(Float, nullable=False)
    price: Mapped[float] = mapped_column(Float, nullable=False)
    market_value: Mapped[float] = mapped_column(Float, nullable=False)


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
