"""Alerts: a halt, a kill switch, a quarantine, a failed flow, drift or decay, sent to people
through a Prefect notification block.

Where they go is configured in ``alerts:`` of params.yaml: a saved block by name (any kind —
Slack, Teams, e-mail, a custom webhook), or a webhook URL read from the environment variable
it names. Webhook URLs carry tokens, so the URL itself is never in a file and never logged.
With neither, alerts are only logged.

Sending never raises: an alert that cannot be delivered is logged as an error, and the day's
trading or the drift check carries on (their own state is already in the ledger).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from typing import Literal

from alphaline.config import AlertParams

log = logging.getLogger(__name__)

AlertKind = Literal["halt", "kill_switch", "quarantine", "flow_failed", "drift", "decay"]


@dataclass(frozen=True)
class Alert:
    kind: AlertKind
    subject: str
    body: str
    details: dict = field(default_factory=dict)

    def message(self) -> str:
        """The body with its details as JSON, for a person and for a machine."""
        return self.body + ("\n" + json.dumps(self.details, default=str, sort_keys=True)
                            if self.details else "")


def notifier(params: AlertParams):
    """The notification block alerts go through, or None when none is configured."""
    if params.block:
        from prefect.blocks.core import Block

        return Block.load(params.block)
    url = os.environ.get(params.webhook_url_env or "", "") if params.webhook_url_env else ""
    if not url:
        return None
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    return CustomWebhookNotificationBlock(
        name="alphaline", url=url, method="POST",
        json_data={"source": "alphaline", "subject": "{{subject}}", "body": "{{body}}"})


def send(params: AlertParams, alert: Alert) -> bool:
    """Log the alert and notify through the configured block; True when it was delivered."""
    log.warning("ALERT %s: %s", alert.kind, alert.subject)
    try:
        block = notifier(params)
        if block is None:
            return False
        block.notify(alert.message(), subject=f"[alphaline {alert.kind}] {alert.subject}",
                     _sync=True)
    except Exception as exc:  # a lost alert must not stop the flow that raised it
        # The exception text may quote the URL: name its type only.
        log.error("alert %s could not be delivered: %s", alert.kind, type(exc).__name__)
        return False
    return True


def day_alerts(day: str, trading_state: str, state_changed: bool, kill_switches: list[str],
               quarantined: dict[str, list[str]]) -> list[Alert]:
    """What a trading day raises: a halt, the kill switches that fired, quarantined symbols."""
    out = []
    if trading_state == "HALTED" and state_changed:
        out.append(Alert("halt", f"{day}: trading HALTED", "; ".join(kill_switches)
                         or "trading state is HALTED", {"day": day, "state": trading_state}))
    if kill_switches:
        out.append(Alert("kill_switch", f"{day}: {len(kill_switches)} kill switch(es) fired",
                         "\n".join(kill_switches), {"day": day, "state": trading_state}))
    if quarantined:
        out.append(Alert("quarantine", f"{day}: {len(quarantined)} symbol(s) quarantined",
                         "\n".join(f"{s}: {r[0]}" for s, r in sorted(quarantined.items())),
                         {"day": day, "symbols": sorted(quarantined)}))
    return out


def on_flow_failure(flow, flow_run, state) -> None:
    """Prefect ``on_failure`` hook: a failed run (a quarantined batch among them) alerts."""
    from alphaline.project import Project

    try:
        params = Project.load(flow_run.parameters.get("root")).params.alerts
    except Exception as exc:  # no readable params: nothing says where to send
        log.error("flow %s failed; no alert sent (params unreadable: %s)", flow.name,
                  type(exc).__name__)
        return
    message = state.message or "failed"
    kind: AlertKind = "quarantine" if "quarantined in" in message else "flow_failed"
    send(params, Alert(kind, f"flow {flow.name} run {flow_run.name} failed", message,
                       {"flow": flow.name, "run": flow_run.name, "run_id": str(flow_run.id)}))
