"""Deployments with the schedules from params, and ``serve`` to run them."""

from __future__ import annotations

from prefect import serve
from prefect.deployments.runner import RunnerDeployment
from prefect.schedules import Cron, RRule

from alphaline.flows.daily_trading import daily_trading
from alphaline.flows.drift_check import drift_check
from alphaline.flows.retrain import retrain
from alphaline.project import Project


def build(project: Project) -> list[RunnerDeployment]:
    s = project.params.schedule
    root = {"root": str(project.root)}
    return [
        daily_trading.to_deployment(
            name="daily", schedules=[Cron(s.daily_trading_cron, timezone=s.timezone)],
            parameters=root, tags=["alphaline", "trading"],
            description="After the close on exchange days (other days exit at once)."),
        retrain.to_deployment(
            name="monthly", schedules=[RRule(s.retrain_rrule, timezone=s.timezone)],
            parameters=root, tags=["alphaline", "training"],
            description="First business day of each month."),
        drift_check.to_deployment(
            name="daily", schedules=[Cron(s.drift_check_cron, timezone=s.timezone)],
            parameters=root, tags=["alphaline", "monitoring"],
            description="PSI of features and scores; starts retrain when over the threshold."),
    ]


def register(project: Project) -> list[str]:
    """Create or update the deployments in the Prefect API; return their ids."""
    return [str(d.apply()) for d in build(project)]


def serve_all(project: Project) -> None:
    """Register the deployments and run them from this process until interrupted."""
    serve(*build(project))
