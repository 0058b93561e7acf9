"""Deployments land in the Prefect API with the schedules from params."""

import asyncio

from prefect.client.orchestration import get_client

from flows.deployments import register


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
