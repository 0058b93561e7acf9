"""The trading ledger: SQLAlchemy models, Alembic migrations and the store API."""

from alphaline.trading.ledger.store import Ledger

__all__ = ["Ledger"]
