"""The trading ledger: SQLAlchemy models, Alembic migrations and the store API."""

from alphaline.trading.ledger.store import Ledger, revisions, upgrade

__all__ = ["Ledger", "revisions", "upgrade"]
