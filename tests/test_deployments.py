"""Deployments land in the Prefect API with the schedules from params."""

import asyncio

from prefect.client.orchestration import get_client

from alphaline.flows.deployments import register


def test_deployments_carry_the_params_schedules(project, prefect_harness):
    ids = register(project)
    assert len(ids) == 3

    async def read():
        async with get_client() as client:
            return [await client.read_deployment(i) for i in ids]

    s = project.params.schedule
    by_flow = {}
    for d in asyncio.run(read()):
        sched = d.schedules[0].schedule
        by_flow[d.entrypoint.split(":")[-1]] = sched
        assert d.parameters == {"root": str(project.root)}
        assert sched.timezone == s.timezone
    assert by_flow["daily_trading"].cron == s.daily_trading_cron
    assert by_flow["drift_check"].cron == s.drift_check_cron
    assert by_flow["retrain"].rrule.endswith(s.retrain_rrule)


def test_alphaline_serve_leaves_scheduled_deployments(project, prefect_harness):
    """The real `alphaline serve` process, pointed at the harness's API."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}
    cli = Path(sys.executable).parent / "alphaline"
    proc = subprocess.Popen([str(cli), "serve", "--root", str(project.root)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)

    async def names():
        async with get_client() as client:
            found = await client.read_deployments()
            return {(d.name, d.entrypoint.split(":")[-1]): d for d in found
                    if d.parameters.get("root") == str(project.root)}

    try:
        deadline = time.monotonic() + 120
        found = {}
        while time.monotonic() < deadline and len(found) < 3:
            assert proc.poll() is None, proc.stdout.read().decode()[-2000:]
            time.sleep(2)
            found = asyncio.run(names())
        assert set(found) == {("daily", "daily_trading"), ("monthly", "retrain"),
                              ("daily", "drift_check")}
        assert all(d.schedules and d.schedules[0].active for d in found.values())
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
