"""The day's guard rails: one run at a time (a lock in the ledger, across real processes),
never before the close plus the settle delay unless forced."""

import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from prefect import flow
from typer.testing import CliRunner

from alphaline.calendar import require_settled, session_close, sessions
from alphaline.errors import LockHeld, MissingPrerequisite
from alphaline.flows.cli import EXIT_MISSING, app
from alphaline.flows.daily_trading import daily_trading
from alphaline.project import Project
from alphaline.trading import locks
from alphaline.trading.ledger import Ledger
from alphaline.trading.ledger.models import Lock, Order
from tests.conftest import BACKENDS, REPO, database_url, open_ledger

MINUTE = dt.timedelta(minutes=1)
HOLDER = textwrap.dedent("""
    import datetime as dt, sys, time
    from alphaline.trading.ledger import Ledger
    url, what, start, hold = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
    ledger = Ledger(url)
    time.sleep(max(0.0, start - time.time()))  # line the racers up after their imports
    try:
        with ledger.hold_lock(what, dt.timedelta(minutes=10)):
            print("acquired", flush=True)
            time.sleep(hold)
    except Exception as exc:
        print(type(exc).__name__, exc, flush=True)
""")


def holder_process(url: str, what: str, start: float = 0.0, hold: float = 600.0
                   ) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", HOLDER, url, what, str(start), str(hold)],
                            stdout=subprocess.PIPE, text=True, cwd=REPO)


@pytest.fixture(params=BACKENDS)
def ledger_url(request):
    url = database_url(request, request.param, "ledger")
    open_ledger(url)
    return url


@pytest.fixture
def held_elsewhere(ledger_url):
    """Another process holding the lock until the test ends (then SIGKILLed)."""
    proc = holder_process(ledger_url, "other-run")
    assert proc.stdout.readline().strip() == "acquired"
    yield proc
    proc.kill()
    proc.wait()


def test_two_processes_racing_for_the_lock_one_wins_the_other_is_told_who(ledger_url):
    start = time.time() + 4.0
    procs = [holder_process(ledger_url, f"racer-{i}", start, hold=2.0) for i in range(2)]
    outs = sorted((p.communicate(timeout=60)[0].strip() for p in procs),
                  key=lambda out: out != "acquired")
    assert outs[0] == "acquired", outs
    assert outs[1].startswith("LockHeld the 'shared-state' lock is held by racer-"), outs
    assert "s so far" in outs[1] and "try again when it ends" in outs[1]
    assert locks.current_holder(Ledger(ledger_url).engine) is None  # released in finally


def test_a_killed_holder_does_not_block_the_next_run(ledger_url):
    proc = holder_process(ledger_url, "doomed")
    assert proc.stdout.readline().strip() == "acquired"
    ledger = Ledger(ledger_url)
    with pytest.raises(LockHeld, match=rf"held by doomed \(pid {proc.pid} on "), \
            ledger.hold_lock("next", MINUTE):
        pass
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with ledger.hold_lock("next", MINUTE) as me:  # its process is gone: taken over at once
        assert me is not None and locks.current_holder(ledger.engine) == str(me)
    assert ledger.table(Lock).empty


def test_an_expired_lock_of_another_host_is_taken_over_only_after_expiry(ledger_url):
    engine = Ledger(ledger_url).engine
    t0 = dt.datetime(2030, 1, 2, 12, 0)
    far = locks.Holder("daily_trading", "another-host", 1, "abc")
    assert locks.try_acquire(engine, "shared-state", far, MINUTE, now=t0) is None
    mine = locks.Holder.mine("retrain")
    row = locks.try_acquire(engine, "shared-state", mine, MINUTE, now=t0 + MINUTE / 2)
    assert row is not None and row.holder == str(far)
    assert locks.try_acquire(engine, "shared-state", mine, MINUTE, now=t0 + 2 * MINUTE) is None
    assert locks.current_holder(engine) == str(mine)
    locks.release(engine, "shared-state", far)  # not the holder any more: changes nothing
    assert locks.current_holder(engine) == str(mine)


def test_the_lock_is_reentrant_within_a_run_and_exclusive_across_threads(ledger_url):
    ledger = Ledger(ledger_url)
    errors = []

    def other_thread():  # a new thread starts with an empty context: another run
        try:
            with ledger.hold_lock("thread", MINUTE):
                errors.append(None)
        except LockHeld as exc:
            errors.append(exc)

    with ledger.hold_lock("outer", MINUTE) as outer:
        with ledger.hold_lock("inner", MINUTE) as inner:
            assert outer is not None and inner is None
        t = threading.Thread(target=other_thread)
        t.start()
        t.join()
        assert locks.current_holder(ledger.engine) == str(outer)  # the inner exit kept it
    assert isinstance(errors[0], LockHeld) and "held by outer" in str(errors[0])
    assert ledger.table(Lock).empty


def test_a_live_holder_renews_its_lock(ledger_url):
    ledger = Ledger(ledger_url)
    with ledger.hold_lock("slow", dt.timedelta(seconds=0.6)):
        first = ledger.table(Lock)["expires_at"].iloc[0]
        time.sleep(1.0)
        assert ledger.table(Lock)["expires_at"].iloc[0] > first
        assert locks.try_acquire(ledger.engine, "shared-state", locks.Holder.mine("x"),
                                 MINUTE) is not None  # renewed: still not expired


def test_settled_means_after_the_close_plus_the_delay():
    delay = dt.timedelta(minutes=30)
    day = dt.date(2024, 11, 29)  # the day after Thanksgiving closes early, at 13:00
    close = session_close("XNYS", day)
    assert close == dt.datetime(2024, 11, 29, 18, 0, tzinfo=dt.UTC)
    with pytest.raises(MissingPrerequisite, match=r"closes at 13:00 EST .* 13:30 EST"):
        require_settled("XNYS", day, delay, close + delay / 2, "America/New_York")
    require_settled("XNYS", day, delay, close + delay, "America/New_York")
    require_settled("XNYS", dt.date(2024, 11, 27), delay, close, "America/New_York")  # past


def next_session() -> dt.date:
    today = dt.date.today()
    return sessions("XNYS", today + dt.timedelta(days=1), today + dt.timedelta(days=10))[0].date()


def test_daily_flow_refuses_a_day_that_has_not_settled(project, prefect_harness):
    with pytest.raises(MissingPrerequisite, match=r"is not settled.*--force"):
        daily_trading(day=next_session(), root=str(project.root))
    assert not project.validated_bars.exists()  # refused before fetching anything
    assert Ledger(project.ledger_url).table(Lock).empty


def test_forced_run_passes_the_close_check_and_meets_the_lock(project, prefect_harness):
    open_ledger(project.ledger_url)
    proc = holder_process(project.ledger_url, "other-run")
    try:
        assert proc.stdout.readline().strip() == "acquired"
        with pytest.raises(LockHeld, match=rf"held by other-run \(pid {proc.pid} on "):
            daily_trading(day=next_session(), root=str(project.root), force=True)
        result = CliRunner().invoke(app, ["trade", "--root", str(project.root), "--force",
                                          "--day", str(next_session())])
    finally:
        proc.kill()
        proc.wait()
    assert result.exit_code == EXIT_MISSING, result.output
    assert "lock is held by other-run" in " ".join(result.output.split())
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert not project.validated_bars.exists()  # the lock comes before any data


def test_retrain_and_drift_check_take_the_same_lock(project, prefect_harness):
    from alphaline.flows.drift_check import drift_check
    from alphaline.flows.retrain import retrain

    open_ledger(project.ledger_url)
    proc = holder_process(project.ledger_url, "daily_trading")
    try:
        assert proc.stdout.readline().strip() == "acquired"
        with pytest.raises(LockHeld, match=r"held by daily_trading \(pid"):
            retrain(root=str(project.root), as_of=project.params.data.end, reason="test")
        with pytest.raises(LockHeld, match=r"held by daily_trading \(pid"):
            drift_check(root=str(project.root))
    finally:
        proc.kill()
        proc.wait()
    assert not project.raw_bars.exists()  # refused before fetching anything


def test_a_flow_started_inside_a_flow_that_holds_the_lock_reenters_it(ledger_url,
                                                                       prefect_harness):
    @flow
    def inner(url: str) -> bool:
        with Ledger(url).hold_lock("inner", MINUTE) as me:
            return me is None

    @flow
    def outer(url: str) -> bool:  # drift_check starting retrain has this shape
        with Ledger(url).hold_lock("outer", MINUTE):
            return inner(url)

    assert outer(ledger_url) is True
    assert Ledger(ledger_url).table(Lock).empty


def test_two_daily_runs_started_together_exactly_one_trades(trained_project, tmp_path):
    project_root = tmp_path / "p"
    shutil.copytree(trained_project.root, project_root)
    project = Project.load(project_root)
    end = project.params.data.end
    day = sessions(project.params.data.calendar, end + dt.timedelta(days=1),
                   end + dt.timedelta(days=10))[0].date()
    engine = open_ledger(project.ledger_url).engine
    outcomes: list[object] = [None, None]

    def run(i: int) -> None:
        try:
            outcomes[i] = daily_trading(day=day, root=str(project.root))
        except Exception as exc:  # the test inspects what each run ended with
            outcomes[i] = exc

    first = threading.Thread(target=run, args=(0,))
    first.start()
    # the second run starts while the first is inside its day (holding the lock): the
    # overlap two schedulers firing together produce, without depending on thread timing
    deadline = time.monotonic() + 300
    while locks.current_holder(engine) is None and first.is_alive():
        assert time.monotonic() < deadline, "the first run never took the lock"
        time.sleep(0.05)
    second = threading.Thread(target=run, args=(1,))
    second.start()
    for t in (first, second):
        t.join(timeout=600)
    traded = [o for o in outcomes if isinstance(o, dict)]
    refused = [o for o in outcomes if isinstance(o, LockHeld)]
    assert len(traded) == 1 and len(refused) == 1, outcomes
    assert "held by daily_trading (pid" in str(refused[0])
    orders = open_ledger(project.ledger_url).table(Order)
    assert len(orders) == len(traded[0]["orders_submitted"]) + len(traded[0]["orders_rejected"])
    assert len(orders) > 0
