"""One run at a time: a lock row in the ledger database that daily_trading, retrain and
drift_check each hold while they touch shared state (bars, features, the online store, the
registry, the ledger).

Why the ledger and not a Prefect global concurrency limit: the ledger is there for every run
(a CLI run with Prefect's ephemeral API, a served deployment, a test), it is shared by every
process that trades the same book, and a PostgreSQL ledger extends it across machines. A
Prefect limit would need a server all runners share.

- acquire is one atomic statement: insert the row, or take it over when it has expired or its
  holder's process on this host is gone (compare-and-swap on the row as read);
- a live holder renews the expiry from a heartbeat thread, so a long retrain keeps it and a
  crashed one (SIGKILL, power loss) stops blocking after ``timeout`` at the latest;
- re-entrant within one run: a flow started inside a flow that holds the lock (drift_check
  starting retrain) sees the holder in its context and goes on;
- released in ``finally``, and only by its holder.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import logging
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from alphaline.errors import LockHeld
from alphaline.trading.ledger.models import Lock

log = logging.getLogger(__name__)

SHARED_STATE = "shared-state"

# Tokens of the locks this run (this context and the contexts copied from it) holds.
_held: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "alphaline_locks", default=None)


@dataclass(frozen=True)
class Holder:
    """Who holds a lock: ``what`` (the flow) in process ``pid`` on ``host``, one token per
    acquisition. Stored as one string so a takeover can compare-and-swap on it."""

    what: str
    host: str
    pid: int
    token: str

    def __str__(self) -> str:
        return f"{self.what} pid={self.pid} host={self.host} token={self.token}"

    @classmethod
    def mine(cls, what: str) -> Holder:
        return cls(what, socket.gethostname(), os.getpid(), uuid.uuid4().hex[:12])

    @classmethod
    def parse(cls, text: str) -> Holder | None:
        try:
            what, pid, host, token = text.rsplit(" ", 3)
            return cls(what, host.removeprefix("host="), int(pid.removeprefix("pid=")),
                       token.removeprefix("token="))
        except ValueError:
            return None

    def gone(self) -> bool:
        """True only when the holder's process is on this host and no longer exists."""
        if self.host != socket.gethostname():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # alive, another user's
            return False
        return False


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)  # the ledger stores naive UTC


def held_message(name: str, row: Lock, now: dt.datetime) -> str:
    """The message a run that finds the lock taken prints: who, since when, how long."""
    holder = Holder.parse(row.holder)
    who = f"{holder.what} (pid {holder.pid} on {holder.host})" if holder else row.holder
    held = int((now - row.acquired_at).total_seconds())
    left = int((row.expires_at - now).total_seconds())
    return (f"the {name!r} lock is held by {who} since {row.acquired_at:%Y-%m-%d %H:%M:%S} "
            f"UTC ({held} s so far; it lapses in {left} s unless its holder renews it): one of "
            f"daily_trading, retrain and drift_check runs at a time; try again when it ends")


def try_acquire(engine: Engine, name: str, holder: Holder, timeout: dt.timedelta,
                now: dt.datetime | None = None, attempts: int = 3) -> Lock | None:
    """Take the lock for ``holder`` (None), or return the row of whoever has it.

    Each write is one statement in its own transaction: an insert, or a take-over that is a
    compare-and-swap on the row as read (holder and expiry), so of two runs taking over the
    same expired lock exactly one succeeds, and a holder that renewed in between keeps it.
    """
    now = now or _now()
    values = {"holder": str(holder), "acquired_at": now, "expires_at": now + timeout}
    try:
        with engine.begin() as conn:
            conn.execute(insert(Lock).values(name=name, **values))
        return None
    except IntegrityError:
        pass
    with engine.connect() as conn:
        row = conn.execute(select(Lock).where(Lock.name == name)).one_or_none()
    if row is None:  # released between the insert and the read
        return _again(engine, name, holder, timeout, now, attempts)
    previous = Holder.parse(row.holder)
    if row.expires_at <= now or (previous is not None and previous.gone()):
        with engine.begin() as conn:
            taken = conn.execute(update(Lock).where(
                Lock.name == name, Lock.holder == row.holder, Lock.expires_at == row.expires_at)
                .values(**values)).rowcount
        if taken == 1:
            log.warning("took over the %r lock from %s (%s)", name, row.holder,
                        "expired" if row.expires_at <= now else "its process is gone")
            return None
        with engine.connect() as conn:
            row = conn.execute(select(Lock).where(Lock.name == name)).one_or_none()
        if row is None:
            return _again(engine, name, holder, timeout, now, attempts)
    return Lock(name=row.name, holder=row.holder, acquired_at=row.acquired_at,
                expires_at=row.expires_at)


def _again(engine: Engine, name: str, holder: Holder, timeout: dt.timedelta,
           now: dt.datetime, attempts: int) -> Lock | None:
    if attempts <= 1:
        raise LockHeld(f"the {name!r} lock changes hands too fast to take: try again")
    return try_acquire(engine, name, holder, timeout, now, attempts - 1)


def renew(engine: Engine, name: str, holder: Holder, timeout: dt.timedelta) -> bool:
    """Push the expiry forward; False when the lock is no longer ours."""
    with engine.begin() as conn:
        return conn.execute(update(Lock).where(Lock.name == name, Lock.holder == str(holder))
                            .values(expires_at=_now() + timeout)).rowcount == 1


def release(engine: Engine, name: str, holder: Holder) -> None:
    with engine.begin() as conn:
        conn.execute(delete(Lock).where(Lock.name == name, Lock.holder == str(holder)))


def current_holder(engine: Engine, name: str = SHARED_STATE) -> str | None:
    with engine.connect() as conn:
        return conn.scalar(select(Lock.holder).where(Lock.name == name))


@contextlib.contextmanager
def hold(engine: Engine, what: str, timeout: dt.timedelta, name: str = SHARED_STATE
         ) -> Iterator[Holder | None]:
    """Hold ``name`` for the body, or raise :class:`LockHeld` naming the holder.

    Yields the new holder, or None when this run already holds the lock (re-entry).
    """
    held = _held.get() or {}
    if name in held:
        yield None
        return
    holder = Holder.mine(what)
    row = try_acquire(engine, name, holder, timeout)
    if row is not None:
        raise LockHeld(held_message(name, row, _now()))
    stop = threading.Event()

    def heartbeat() -> None:
        while not stop.wait(timeout.total_seconds() / 3):
            try:
                if not renew(engine, name, holder, timeout):
                    log.error("the %r lock was taken from %s", name, holder)
                    return
            except Exception:  # a database hiccup: the next beat tries again before expiry
                log.exception("could not renew the %r lock", name)

    beat = threading.Thread(target=heartbeat, name=f"lock-{name}", daemon=True)
    beat.start()
    reset = _held.set({**held, name: holder.token})
    try:
        yield holder
    finally:
        _held.reset(reset)
        stop.set()
        beat.join()
        release(engine, name, holder)
