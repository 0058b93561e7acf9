"""Ledger access. Writes are idempotent: keys derive from the trading day, so a rerun of a
day adds nothing that is already there."""

from __future__ import annotations

import datetime as dt
import getpass
import json
import math
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import pandas as pd
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import bindparam, create_engine, delete, event, func, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.attributes import set_committed_value

import alphaline.trading.orders as order_life
from alphaline.errors import DataRejected, IllegalTransition, MissingPrerequisite
from alphaline.trading import corporate_actions as ca
from alphaline.trading import locks
from alphaline.trading.ledger.models import (
    CashMovement,
    CorporateAction,
    DailyNav,
    Fill,
    Order,
    OrderEvent,
    Position,
    PositionAdjustment,
    RiskEvent,
    Signal,
    Tca,
)
from alphaline.trading.marks import Mark, mark_book, sessions_between
from alphaline.trading.portfolio import OrderIntent
from alphaline.trading.risk_engine import Approved
from alphaline.trading.states import ACTIVE, TRADING_STATES

_ALEMBIC_INI = Path(__file__).with_name("alembic.ini")


def _alembic_config() -> Config:
    cfg = Config(str(_ALEMBIC_INI))
    cfg.set_main_option("script_location", str(_ALEMBIC_INI.parent / "migrations"))
    return cfg


@lru_cache(maxsize=1)
def head_revision() -> str:
    """The newest revision among this code's migrations."""
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None, "the ledger has no migrations"
    return head


def _engine(url: str) -> Engine:
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return create_engine(url, future=True)


def _unsynced(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous=OFF")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None: never migrated). One small query."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (a no-op when it is there already)."""
    cfg = _alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def upgrade(url: str) -> tuple[str | None, str]:
    """Migrate the ledger at ``url`` to the head revision; return (before, after).

    The one place the schema changes: ``alphaline db upgrade``, and entry points that
    write the ledger (the daily_trading and drift_check flows, halt/resume, demo).
    """
    engine = _engine(url)
    try:
        before = current_revision(engine)
        if before != head_revision():
            _refuse_unknown(before)
            migrate(engine)
        return before, current_revision(engine)
    finally:
        engine.dispose()


def revisions(url: str) -> tuple[str | None, str]:
    """(current, head) for the ledger at ``url``, without changing it."""
    engine = _engine(url)
    try:
        return current_revision(engine), head_revision()
    finally:
        engine.dispose()


def _refuse_unknown(current: str | None) -> None:
    """A revision none of this code's migrations made: a newer alphaline wrote the database."""
    known = {s.revision for s in ScriptDirectory.from_config(_alembic_config()).walk_revisions()}
    if current is not None and current not in known:
        raise MissingPrerequisite(
            f"ledger schema at {current}, which this code does not know (it expects "
            f"{head_revision()}): the database was written by a newer alphaline")


def _require_head(engine: Engine) -> None:
    current, head = current_revision(engine), head_revision()
    if current == head:
        return
    _refuse_unknown(current)
    raise MissingPrerequisite(f"ledger schema at {current or 'none (empty database)'}, code "
                              f"expects {head}: run `alphaline db upgrade`")


class Ledger:
    def __init__(self, url: str, *, scratch: bool = False):
        """Open the ledger at ``url``; its schema must be at the head revision.

        Opening never migrates: :func:`upgrade` (``alphaline db upgrade``) does, so a schema
        change happens once, on purpose, and not inside whichever process opens it first.
        ``scratch`` (a backtest's own SQLite ledger): commits are not synced to disk, which
        survives a killed process but not a power cut, a trade a replay can make.
        """
        self.url = url
        self.engine = _engine(url)
        if scratch and url.startswith("sqlite"):
            event.listen(self.engine, "connect", _unsynced)
        _require_head(self.engine)
        self._session = sessionmaker(self.engine, expire_on_commit=False)

    def session(self) -> Session:
        return self._session()

    # capital
    def ensure_initial_cash(self, day: dt.date, amount: float) -> None:
        with self.session() as s, s.begin():
            if s.scalar(select(func.count()).select_from(CashMovement)) == 0:
                s.add(CashMovement(day=day, amount=amount, note="initial capital"))

    def cash(self, through: dt.date | None = None) -> float:
        """Capital movements, fills (price, commission, slippage) and adjustments (dividends)."""
        with self.session() as s:
            q_cash = select(func.coalesce(func.sum(CashMovement.amount), 0.0))
            q_fills = select(func.coalesce(func.sum(
                -Fill.quantity * Fill.price - Fill.commission - Fill.slippage), 0.0))
            q_adjust = select(func.coalesce(func.sum(PositionAdjustment.cash), 0.0))
            if through is not None:
                q_cash = q_cash.where(CashMovement.day <= through)
                q_fills = q_fills.where(Fill.day <= through)
                q_adjust = q_adjust.where(PositionAdjustment.day <= through)
            return float(s.scalar(q_cash)) + float(s.scalar(q_fills)) + float(s.scalar(q_adjust))

    # the one-run-at-a-time lock (trading/locks.py)
    def hold_lock(self, what: str, timeout: dt.timedelta):
        """Context manager: hold the shared-state lock for ``what`` or raise ``LockHeld``."""
        return locks.hold(self.engine, what, timeout)

    # trading state: the newest risk event is the current state (none yet: ACTIVE)
    def trading_state(self) -> str:
        event = self.trading_state_event()
        return event.state if event else ACTIVE

    def trading_state_event(self) -> RiskEvent | None:
        """The newest risk event: the current state, since when, why and by whom."""
        with self.session() as s:
            return s.scalars(select(RiskEvent).order_by(RiskEvent.id.desc()).limit(1)).first()

    def set_trading_state(self, state: str, reason: str, *, actor: str | None = None,
                          day: dt.date | None = None) -> RiskEvent:
        """Record a state change (or a rule's verdict on ``day``) as a new risk event.

        ``actor``: the person (default: the OS user) or the rule that decided it.
        """
        if state not in TRADING_STATES:
            raise ValueError(f"trading state must be one of {', '.join(TRADING_STATES)}, "
                             f"not {state!r}")
        if not reason.strip():
            raise ValueError("a trading state change needs a reason")
        event = RiskEvent(state=state, reason=reason, actor=actor or getpass.getuser(), day=day)
        with self.session() as s, s.begin():
            s.add(event)
        return event

    def risk_events(self, *, day: dt.date | None = None, limit: int | None = None
                    ) -> list[RiskEvent]:
        """Risk events, newest first; ``day``: only those a rule recorded for that day."""
        with self.session() as s:
            q = select(RiskEvent).order_by(RiskEvent.id.desc())
            if day is not None:
                q = q.where(RiskEvent.day == day)
            return list(s.scalars(q.limit(limit)))

    # signals
    def record_signals(self, day: dt.date, scores: pd.DataFrame, model_name: str,
                       model_version: str) -> int:
        """``scores``: symbol, score, reasons (list), and with meta-labeling probability and
        size. Returns rows added."""
        ranks = scores["score"].rank(ascending=False, method="first").astype(int)
        added = 0
        with self.session() as s, s.begin():
            have = set(s.scalars(select(Signal.symbol).where(
                Signal.trading_day == day, Signal.model_version == model_version)))
            rows = scores.to_dict(orient="records")
            for row, rank in zip(rows, ranks, strict=True):
                if row["symbol"] in have:
                    continue
                s.add(Signal(trading_day=day, symbol=row["symbol"], score=float(row["score"]),
                             rank=int(rank), model_name=model_name, model_version=model_version,
                             reasons=json.dumps(row.get("reasons", [])),
                             attention=_attention(row.get("attention")),
                             probability=_optional(row.get("probability")),
                             bet_size=_optional(row.get("size"))))
                added += 1
        return added

    # orders: every change of status passes the transition table (trading/order_life.py) and is
    # written with its event in the same transaction
    def existing_order_ids(self, ids: Iterable[str]) -> set[str]:
        ids = list(ids)
        if not ids:
            return set()
        with self.session() as s:
            return set(s.scalars(select(Order.client_order_id)
                                 .where(Order.client_order_id.in_(ids))))

    def add_orders(self, approved: list[Approved], rejected: list[tuple[OrderIntent, str]], *,
                   broker: str, model_version: str | None, expires_on: dt.date | None,
                   styles: dict[str, str] | None = None,
                   estimates: dict[str, float] | None = None) -> list[str]:
        """Record the risk engine's verdict: approved orders as ``NEW`` (``approved`` set: only
        an :class:`Approved` wrapper sets it), refused ones as ``REJECTED`` with the reason,
        each with its first event, all in one transaction. Ids already there are skipped.
        ``styles``: each order's execution style by id (``MOC`` where absent);
        ``estimates``: the cost model's slippage estimate at the decision, by id.
        Returns the ids inserted."""
        for a in approved:
            if not isinstance(a, Approved):
                raise TypeError("only risk-approved orders enter the ledger as NEW")
        rows = [(a.order, order_life.NEW, "approved by the risk engine") for a in approved]
        rows += [(o, order_life.REJECTED, why) for o, why in rejected]
        inserted = []
        with self.session() as s, s.begin():
            known = set(s.scalars(select(Order.client_order_id).where(
                Order.client_order_id.in_([o.client_order_id for o, _, _ in rows]))))
            for o, status, cause in rows:
                if o.client_order_id in known:
                    continue
                order_life.check_transition(o.client_order_id, None, status)
                s.add(Order(client_order_id=o.client_order_id, trading_day=o.trading_day,
                            symbol=o.symbol, intent=o.intent, side=o.side, quantity=o.quantity,
                            reference_price=o.reference_price, status=status,
                            reject_reason=cause if status == order_life.REJECTED else None,
                            broker=broker, model_version=model_version,
                            sequence=order_life.sequence_of(o.client_order_id),
                            time_in_force="DAY", expires_on=expires_on,
                            approved=status == order_life.NEW, filled_quantity=0.0,
                            execution_style=(styles or {}).get(o.client_order_id, "MOC"),
                            estimated_slippage=(estimates or {}).get(o.client_order_id)))
                s.flush()  # the order row before its event (foreign key)
                s.add(OrderEvent(client_order_id=o.client_order_id, from_status=None,
                                 to_status=status, cause=cause))
                known.add(o.client_order_id)
                inserted.append(o.client_order_id)
        return inserted

    def transition(self, client_order_id: str, to_status: str, cause: str) -> Order:
        """Move one order to ``to_status`` with its event; an illegal move raises
        :class:`IllegalTransition` and changes nothing. Fill states come only from
        :meth:`add_fills`, which carries the shares."""
        if to_status in (order_life.PARTIALLY_FILLED, order_life.FILLED):
            raise IllegalTransition(f"order {client_order_id}: {to_status} is reached by "
                                    "recording a fill, not set")
        with self.session() as s, s.begin():
            order = s.get(Order, client_order_id)
            if order is None:
                raise KeyError(client_order_id)
            _move(s, order, to_status, cause)
            return order

    def orders(self, day: dt.date | None = None,
               status: str | Iterable[str] | None = None) -> list[Order]:
        with self.session() as s:
            q = select(Order).order_by(Order.trading_day, Order.client_order_id)
            if day is not None:
                q = q.where(Order.trading_day == day)
            if isinstance(status, str):
                q = q.where(Order.status == status)
            elif status is not None:
                q = q.where(Order.status.in_(list(status)))
            return list(s.scalars(q))

    def working_orders(self, before: dt.date | None = None) -> list[Order]:
        """Orders at the broker that may still fill (``SUBMITTED``, ``PARTIALLY_FILLED``),
        decided before ``before`` when given."""
        with self.session() as s:
            q = select(Order).where(Order.status.in_(order_life.WORKING))
            if before is not None:
                q = q.where(Order.trading_day < before)
            return list(s.scalars(q.order_by(Order.client_order_id)))

    def working_quantities(self) -> dict[str, float]:
        """Signed shares still to trade by symbol over every working order (exposure that
        the risk engine counts and a new plan starts from)."""
        out: dict[str, float] = {}
        for o in self.working_orders():
            out[o.symbol] = out.get(o.symbol, 0.0) + order_life.signed_remaining(
                o.side, o.quantity, o.filled_quantity)
        return {s: q for s, q in out.items() if abs(q) > order_life.QUANTITY_EPS}

    def statuses(self, ids: Iterable[str]) -> dict[str, str]:
        """Each known id's current status (one query)."""
        ids = list(ids)
        if not ids:
            return {}
        with self.session() as s:
            return dict(s.execute(select(Order.client_order_id, Order.status)
                                  .where(Order.client_order_id.in_(ids))).all())

    def transition_many(self, moves: list[tuple[str, str, str]]) -> list[str]:
        """Several ``(id, to_status, cause)`` moves in one transaction (a broker's batch of
        acknowledgements); a move the table does not allow from the order's current state,
        or for an unknown id, is skipped. Returns the ids moved."""
        moved = []
        with self.session() as s, s.begin(), s.no_autoflush:
            ids = list({cid for cid, _, _ in moves})
            found = {o.client_order_id: o for o in s.scalars(
                select(Order).where(Order.client_order_id.in_(ids)))} if ids else {}
            for cid, to, cause in moves:
                order = found.get(cid)
                if order is None or to in (order_life.PARTIALLY_FILLED, order_life.FILLED):
                    continue
                try:
                    _move(s, order, to, cause)
                except IllegalTransition:
                    continue
                moved.append(cid)
        return moved

    def fill_ids(self) -> set[str]:
        """Every fill id in the ledger (a broker's execution ids: what it already holds)."""
        with self.session() as s:
            return set(s.scalars(select(Fill.fill_id)))

    def set_commissions(self, commissions: dict[str, float]) -> int:
        """Set the commission of fills by id, as the broker's commission reports give it
        (they arrive after the execution); one statement for the batch, ids not in the
        ledger skipped, the same value again changes nothing. Returns the fills changed."""
        if not commissions:
            return 0
        fills = Fill.__table__
        stmt = (update(fills).where(fills.c.fill_id == bindparam("fill"),
                                    fills.c.commission != bindparam("fee"))
                .values(commission=bindparam("fee")))
        with self.engine.begin() as conn:
            done = conn.execute(stmt, [{"fill": k, "fee": float(v)}
                                       for k, v in commissions.items()])
        return max(done.rowcount, 0)

    def fills(self, day: dt.date | None = None) -> list[Fill]:
        with self.session() as s:
            q = select(Fill).order_by(Fill.day, Fill.fill_id)
            if day is not None:
                q = q.where(Fill.day == day)
            return list(s.scalars(q))

    def approved_quantities(self, before: dt.date) -> pd.DataFrame:
        """``symbol, quantity`` of every order the risk engine approved before ``day``, oldest
        first: each name's typical order, the fat-finger check's yardstick."""
        q = (select(Order.symbol, Order.quantity)
             .where(Order.approved.is_(True), Order.trading_day < before)
             .order_by(Order.trading_day, Order.client_order_id))
        with self.engine.connect() as conn:
            return pd.DataFrame(conn.execute(q).all(), columns=["symbol", "quantity"])

    def charge_borrow(self, day: dt.date, fee: float, short_value: float) -> float:
        """Book one session's borrow fee on the short book as a cash movement (kind
        ``borrow``); a rerun of the day books nothing more. Returns the fee on the books."""
        with self.session() as s, s.begin():
            booked = s.scalar(select(CashMovement.amount).where(
                CashMovement.day == day, CashMovement.kind == "borrow"))
            if booked is not None:
                return -float(booked)
            if fee > 0:
                s.add(CashMovement(day=day, amount=-fee, kind="borrow",
                                   note=f"borrow fee on a short book of {short_value:,.2f}"))
        return fee

    def borrow_booked(self, day: dt.date) -> float:
        """The borrow fee booked for ``day`` (0 when none yet)."""
        with self.session() as s:
            booked = s.scalar(select(CashMovement.amount).where(
                CashMovement.day == day, CashMovement.kind == "borrow"))
        return 0.0 if booked is None else -float(booked)

    def last_sequences(self, day: dt.date) -> dict[tuple[str, str], int]:
        """The newest sequence used per (symbol, intent) on ``day``."""
        with self.session() as s:
            q = (select(Order.symbol, Order.intent, func.max(Order.sequence))
                 .where(Order.trading_day == day).group_by(Order.symbol, Order.intent))
            return {(sym, intent): int(seq) for sym, intent, seq in s.execute(q)}

    def order_events(self, client_order_id: str | None = None) -> list[OrderEvent]:
        with self.session() as s:
            q = select(OrderEvent).order_by(OrderEvent.id)
            if client_order_id is not None:
                q = q.where(OrderEvent.client_order_id == client_order_id)
            return list(s.scalars(q))

    # fills and positions
    def add_fills(self, fills: list[Fill]) -> int:
        """Apply fills in one transaction, each moving its order to ``PARTIALLY_FILLED`` or
        ``FILLED``. A fill for an order the risk engine did not approve, one that is not
        working, or one beyond what remains raises :class:`IllegalTransition` and nothing is
        applied. A fill already recorded (same id) is skipped: a rerun adds nothing."""
        added = 0
        with self.session() as s, s.begin(), s.no_autoflush:
            ids = list({f.client_order_id for f in fills})
            recorded = set(s.scalars(select(Fill.fill_id).where(
                Fill.fill_id.in_([f.fill_id for f in fills])))) if fills else set()
            by_id = {o.client_order_id: o for o in s.scalars(
                select(Order).where(Order.client_order_id.in_(ids)))} if ids else {}
            for fill in fills:
                if fill.fill_id in recorded:
                    continue
                recorded.add(fill.fill_id)
                order = by_id.get(fill.client_order_id)
                if order is None:
                    raise IllegalTransition(f"fill {fill.fill_id}: no order "
                                            f"{fill.client_order_id} in the ledger")
                if not order.approved:
                    raise IllegalTransition(f"fill {fill.fill_id} refused: order "
                                            f"{order.client_order_id} was not approved by the "
                                            "risk engine")
                if fill.symbol != order.symbol or (fill.quantity > 0) != (order.side == "BUY"):
                    raise IllegalTransition(f"fill {fill.fill_id} refused: {fill.quantity:+g} "
                                            f"{fill.symbol} does not match order "
                                            f"{order.client_order_id} ({order.side} "
                                            f"{order.symbol})")
                shares = abs(fill.quantity)
                to = order_life.status_after_fill(order.client_order_id, order.quantity,
                                              order.filled_quantity, shares)
                _move(s, order, to, f"fill {fill.fill_id}: {shares:g} @ {fill.price:.4f}",
                      filled_quantity=order.filled_quantity + shares)
                s.add(fill)
                added += 1
        return added

    def filled_orders(self, day: dt.date) -> list[tuple[Order, list[Fill]]]:
        """Each order with a fill on ``day``, with all its fills so far (what its TCA
        covers)."""
        with self.session() as s:
            ids = select(Fill.client_order_id).where(Fill.day == day).distinct()
            orders = list(s.scalars(select(Order).where(Order.client_order_id.in_(ids))
                                    .order_by(Order.client_order_id)))
            fills: dict[str, list[Fill]] = {o.client_order_id: [] for o in orders}
            q = (select(Fill).where(Fill.client_order_id.in_(list(fills)), Fill.day <= day)
                 .order_by(Fill.day, Fill.fill_id))
            for f in s.scalars(q):
                fills[f.client_order_id].append(f)
            return [(o, fills[o.client_order_id]) for o in orders]

    def record_tca(self, rows: list[Tca]) -> int:
        """Write each order's TCA row, replacing an earlier one of the same order (its later
        fills are in the new one); one transaction. Returns the rows written."""
        with self.session() as s, s.begin():
            ids = [r.client_order_id for r in rows]
            if ids:
                s.execute(delete(Tca).where(Tca.client_order_id.in_(ids)))
            s.add_all(rows)
        return len(rows)

    def tca(self, day: dt.date | None = None) -> pd.DataFrame:
        """The ``tca`` table (of orders last filled on ``day`` when given), by order."""
        q = select(Tca).order_by(Tca.day, Tca.client_order_id)
        if day is not None:
            q = q.where(Tca.day == day)
        return pd.read_sql(q, self.engine)

    def holdings(self, through: dt.date | None = None) -> dict[str, float]:
        """Shares per symbol: fills plus adjustments (a split's shares)."""
        with self.session() as s:
            totals: dict[str, float] = {}
            for model in (Fill, PositionAdjustment):
                q = select(model.symbol, func.sum(model.quantity)).group_by(model.symbol)
                if through is not None:
                    q = q.where(model.day <= through)
                for sym, qty in s.execute(q):
                    totals[sym] = totals.get(sym, 0.0) + float(qty)
            return {sym: qty for sym, qty in totals.items() if abs(qty) > 1e-9}

    def cost_basis(self, through: dt.date | None = None) -> dict[str, tuple[float, float]]:
        """Per held symbol: (shares, average cost per share), from fills and adjustments in
        order (a day's adjustments apply at its open, before its fills at the close)."""
        with self.session() as s:
            fills = s.execute(select(Fill.symbol, Fill.day, Fill.quantity, Fill.price)
                              .where(*([Fill.day <= through] if through else []))
                              .order_by(Fill.day, Fill.created_at, Fill.fill_id)).all()
            adjusts = s.execute(select(PositionAdjustment.symbol, PositionAdjustment.day,
                                       PositionAdjustment.quantity, PositionAdjustment.cost_basis)
                                .where(*([PositionAdjustment.day <= through] if through else []))
                                .order_by(PositionAdjustment.day, PositionAdjustment.id)).all()
        events = sorted([(sym, day, 0, qty, None, basis) for sym, day, qty, basis in adjusts]
                        + [(sym, day, 1, qty, px, 0.0) for sym, day, qty, px in fills],
                        key=lambda e: (e[0], e[1], e[2]))
        out = {}
        for sym in dict.fromkeys(e[0] for e in events):
            qty, basis = ca.average_cost(e[3:] for e in events if e[0] == sym)
            if qty:
                out[sym] = (qty, basis / qty)
        return out

    # corporate actions
    def apply_corporate_actions(self, actions: list[ca.Action], source: str
                                ) -> list[PositionAdjustment]:
        """Record the source's actions and adjust the positions held at the previous close.

        One transaction; an action already recorded with the same value and its adjustment
        are skipped (rerun-safe); one recorded with another value is refused (the source
        changed its history: a person must decide which is right).
        """
        added: list[PositionAdjustment] = []
        with self.session() as s, s.begin():
            for action in actions:
                row = s.scalar(select(CorporateAction).where(
                    CorporateAction.day == action.day, CorporateAction.symbol == action.symbol,
                    CorporateAction.kind == action.kind))
                if row is None:
                    row = CorporateAction(day=action.day, symbol=action.symbol,
                                          kind=action.kind, value=action.value, source=source)
                    s.add(row)
                    s.flush()
                elif abs(row.value - action.value) > 1e-12 * max(1.0, abs(row.value)):
                    raise DataRejected(
                        f"{action.kind} of {action.symbol} on {action.day}: the ledger holds "
                        f"{row.value:g} (from {row.source}), the source now says "
                        f"{action.value:g}; resolve it in the data before trading the day")
                if s.scalar(select(PositionAdjustment.id).where(
                        PositionAdjustment.corporate_action_id == row.id)) is not None:
                    continue
                before = self._held_in(s, action.symbol, action.day - dt.timedelta(days=1))
                change = ca.adjustment(action, before)
                if change is None:
                    continue
                adj = PositionAdjustment(day=action.day, symbol=change.symbol,
                                         quantity=change.quantity, cash=change.cash,
                                         cost_basis=change.cost_basis, cause=change.cause,
                                         corporate_action_id=row.id)
                s.add(adj)
                added.append(adj)
        return added

    @staticmethod
    def _held_in(s: Session, symbol: str, through: dt.date) -> float:
        return sum(float(s.scalar(select(func.coalesce(func.sum(model.quantity), 0.0)).where(
            model.symbol == symbol, model.day <= through)))
            for model in (Fill, PositionAdjustment))

    def adjustments(self, day: dt.date | None = None) -> list[PositionAdjustment]:
        with self.session() as s:
            q = select(PositionAdjustment).order_by(PositionAdjustment.id)
            if day is not None:
                q = q.where(PositionAdjustment.day == day)
            return list(s.scalars(q))

    # marks
    def _last_prices(self, day: dt.date, symbols: Iterable[str]
                     ) -> dict[str, tuple[dt.date, float]]:
        """The ledger's own last price per symbol before ``day``: its newest position row, else
        its newest fill."""
        out: dict[str, tuple[dt.date, float]] = {}
        with self.session() as s:
            for sym in symbols:
                pos = s.scalars(select(Position).where(Position.symbol == sym,
                                                       Position.day < day)
                                .order_by(Position.day.desc()).limit(1)).first()
                if pos is not None:
                    out[sym] = (pos.price_day or pos.day, pos.price)
                    continue
                fill = s.scalars(select(Fill).where(Fill.symbol == sym, Fill.day <= day)
                                 .order_by(Fill.day.desc()).limit(1)).first()
                if fill is not None:
                    out[sym] = (fill.day, fill.price)
        return out

    def mark_to_market(self, day: dt.date, closes: dict[str, float],
                       last_known: dict[str, tuple[dt.date, float]] | None = None,
                       calendar: str | None = None) -> DailyNav:
        """Write the day's positions and NAV (replacing a previous run of the same day).

        A held name without a close today is marked at its last price (``last_known`` from the
        validated bars, else the ledger's previous mark) and flagged stale with the sessions it
        has missed (the exchange's sessions when ``calendar`` is given, else weekdays).
        """
        held = self.holdings(through=day)
        unpriced = [sym for sym in held
                    if not (closes.get(sym) is not None and math.isfinite(closes[sym])
                            and closes[sym] > 0)]
        known = self._last_prices(day, unpriced)
        for sym, (price_day, price) in (last_known or {}).items():
            if sym in known and known[sym][0] > price_day:
                continue
            known[sym] = (price_day, price)
        marks = mark_book(day, held, closes, known, sessions_between(calendar))
        # the session's borrow is booked after its close's NAV (run_ledger_day's last step):
        # a rerun of a finished day leaves it out too, so the day's NAV and plan repeat
        cash = self.cash(through=day) + self.borrow_booked(day)
        long_value = sum(m.market_value for m in marks if m.market_value > 0)
        short_value = sum(m.market_value for m in marks if m.market_value < 0)
        nav = cash + long_value + short_value
        row = DailyNav(day=day, cash=cash, long_value=long_value, short_value=short_value,
                       nav=nav, gross_exposure=(long_value - short_value) / nav if nav else 0.0,
                       net_exposure=(long_value + short_value) / nav if nav else 0.0)
        with self.session() as s, s.begin():
            s.query(Position).filter(Position.day == day).delete()
            for m in marks:
                s.add(Position(day=day, symbol=m.symbol, quantity=m.quantity, price=m.price,
                               market_value=m.market_value, price_day=m.price_day,
                               stale_sessions=m.stale_sessions))
            s.merge(row)
        return row

    def stale_marks(self, day: dt.date) -> list[Mark]:
        """The day's positions marked at an earlier price, most sessions first."""
        with self.session() as s:
            rows = s.scalars(select(Position).where(Position.day == day,
                                                    Position.stale_sessions > 0)
                             .order_by(Position.stale_sessions.desc(), Position.symbol))
            return [Mark(r.symbol, r.quantity, r.price, r.price_day or r.day, r.stale_sessions)
                    for r in rows]

    def nav_history(self) -> pd.DataFrame:
        return pd.read_sql(select(DailyNav).order_by(DailyNav.day), self.engine)

    def table(self, model) -> pd.DataFrame:
        return pd.read_sql(select(model), self.engine)


def _move(s: Session, order: Order, to: str, cause: str,
          filled_quantity: float | None = None) -> None:
    """One transition inside the caller's transaction: checked against the table, applied only
    if the row still has the status it was read with (compare-and-swap), with its event."""
    current = order.status
    order_life.check_transition(order.client_order_id, current, to)
    if to == order_life.SUBMITTED and not order.approved:
        raise IllegalTransition(f"order {order.client_order_id} was not approved by the risk "
                                "engine: it cannot be sent")
    values: dict[str, object] = {"status": to, "updated_at": _utcnow()}
    if filled_quantity is not None:
        values["filled_quantity"] = filled_quantity
    if to == order_life.REJECTED:
        values["reject_reason"] = cause
    # no session synchronisation: the row's object is updated below, and scanning every
    # object in the session per update made a batch of fills quadratic
    done = s.execute(update(Order).where(Order.client_order_id == order.client_order_id,
                                         Order.status == current).values(**values)
                     .execution_options(synchronize_session=False))
    if done.rowcount != 1:
        raise IllegalTransition(f"order {order.client_order_id} changed while moving it to {to}")
    s.add(OrderEvent(client_order_id=order.client_order_id, from_status=current,
                     to_status=to, cause=cause))
    for key, value in values.items():
        set_committed_value(order, key, value)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _attention(value) -> str | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) \
        else json.dumps([float(v) for v in value])


def _optional(value: object) -> float | None:
    return None if value is None or pd.isna(value) else float(value)
