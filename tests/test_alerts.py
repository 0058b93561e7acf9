"""Alerts go through Prefect's notification block to a webhook: here a real HTTP server on
127.0.0.1 in a thread receives them."""

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from prefect import flow

from alphaline.alerts import Alert, day_alerts, notifier, on_flow_failure, send
from alphaline.config import AlertParams

ENV = "ALPHALINE_TEST_ALERT_WEBHOOK"
PARAMS = AlertParams(block=None, webhook_url_env=ENV)


class Receiver:
    """An HTTP endpoint that records every POST body (JSON) and answers ``status``."""

    def __init__(self, status: int = 200):
        self.received: list[dict] = []
        self.paths: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.received.append(json.loads(body))
                outer.paths.append(self.path)
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/hook/s3cr3t-token"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(monkeypatch):
    with Receiver() as r:
        monkeypatch.setenv(ENV, r.url)
        yield r


def test_an_alert_reaches_the_webhook_from_the_environment(receiver):
    alert = Alert("decay", "champion v3 decayed", "CUSUM reached 9", {"champion": "3"})
    assert send(PARAMS, alert)
    assert len(receiver.received) == 1
    got = receiver.received[0]
    assert got["source"] == "alphaline"
    assert got["subject"] == "[alphaline decay] champion v3 decayed"
    assert got["body"].startswith("CUSUM reached 9")
    assert json.loads(got["body"].splitlines()[-1]) == {"champion": "3"}
    assert receiver.paths == ["/hook/s3cr3t-token"]


def test_without_a_destination_alerts_are_only_logged(monkeypatch, caplog):
    monkeypatch.delenv(ENV, raising=False)
    assert notifier(PARAMS) is None
    with caplog.at_level(logging.WARNING, logger="alphaline.alerts"):
        assert not send(PARAMS, Alert("drift", "drift", "x"))
    assert "ALERT drift" in caplog.text
    assert notifier(AlertParams(block=None, webhook_url_env=None)) is None


def test_a_refused_alert_is_logged_without_the_url(monkeypatch, caplog):
    with Receiver(status=500) as r:
        monkeypatch.setenv(ENV, r.url)
        with caplog.at_level(logging.ERROR, logger="alphaline.alerts"):
            assert not send(PARAMS, Alert("halt", "halted", "daily loss"))
        assert len(r.received) == 1  # it was tried
    assert "could not be delivered" in caplog.text
    assert "s3cr3t" not in caplog.text


def test_a_trading_day_raises_halt_kill_switch_and_quarantine_alerts():
    alerts = day_alerts("2024-03-04", "HALTED", True, ["daily loss 6.1% > 5%"],
                        {"SYN001": ["close outside the price band"]})
    assert [a.kind for a in alerts] == ["halt", "kill_switch", "quarantine"]
    assert "SYN001" in alerts[2].body
    # a halt that was already in force is not announced again; a quiet day raises nothing
    assert [a.kind for a in day_alerts("d", "HALTED", False, [], {})] == []
    assert day_alerts("d", "ACTIVE", False, [], {}) == []


@flow(on_failure=[on_flow_failure])
def failing(root: str, message: str) -> None:
    raise RuntimeError(message)


def test_a_failed_flow_alerts(receiver, project, prefect_harness, monkeypatch):
    monkeypatch.setenv(ENV, receiver.url)
    # the project's params name the variable the URL is read from
    params = project.root / "params.yaml"
    params.write_text(params.read_text().replace("webhook_url_env: ALPHALINE_ALERT_WEBHOOK",
                                                 f"webhook_url_env: {ENV}"))
    with pytest.raises(RuntimeError):
        failing(root=str(project.root), message="the broker went away")
    with pytest.raises(RuntimeError):
        failing(root=str(project.root), message="batch failed validation; quarantined in x")
    subjects = [r["subject"] for r in receiver.received]
    assert len(subjects) == 2
    assert subjects[0].startswith("[alphaline flow_failed] flow failing run")
    assert subjects[1].startswith("[alphaline quarantine]")
    assert "the broker went away" in receiver.received[0]["body"]
