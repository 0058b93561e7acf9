"""The Prefect UI as the cockpit, tested as a person would use it: a real ``prefect server
start``, the daily flow run against it from the command line, and the flow run's page opened
in headless Chromium, where its name, its state and its artifacts must show."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from alphaline.calendar import sessions
from alphaline.project import Project
from tests.chromium import Browser, ensure_chromium

BIN = Path(sys.executable).parent
DAILY_ARTIFACTS = {"daily-report", "daily-figures", "daily-orders", "daily-report-page"}


@dataclass(frozen=True)
class Server:
    url: str  # the UI's address
    env: dict[str, str]  # the environment a client of this server runs with
    log: Path

    @property
    def api(self) -> str:
        return f"{self.url}/api"

    def post(self, path: str, body: dict) -> list | dict:
        req = urllib.request.Request(f"{self.api}{path}", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.load(r)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def healthy(api: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api}/health", timeout=2) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture
def prefect_server(tmp_path):
    """``prefect server start`` on a free port with its own PREFECT_HOME (SQLite there),
    analytics off; stopped (its whole process group) on teardown."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(tmp_path / "prefect-home"),
               PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1",
               # the UI asks this address for its data; without it, it asks port 4200
               PREFECT_UI_API_URL=f"{url}/api", PREFECT_API_URL=f"{url}/api")
    log = tmp_path / "prefect-server.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port",
             str(port)], env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while not healthy(f"{url}/api"):
            if proc.poll() is not None or time.monotonic() > deadline:
                why = (f"exited with {proc.returncode}" if proc.poll() is not None
                       else "did not answer /api/health within 90 s")
                pytest.fail(f"prefect server start on port {port} {why}; its log:\n"
                            f"{log.read_text()[-6000:]}")
            time.sleep(0.5)
        yield Server(url, env, log)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def first_day_after(project: Project) -> dt.date:
    end = project.params.data.end
    return sessions(project.params.data.calendar, end + dt.timedelta(days=1),
                    end + dt.timedelta(days=10))[0].date()


def test_the_daily_run_and_its_artifacts_show_on_its_page_in_the_prefect_ui(
        trained_project, prefect_server, tmp_path):
    project = Project.load(shutil.copytree(trained_project.root, tmp_path / "project"))
    day = first_day_after(project)
    run = subprocess.run([str(BIN / "alphaline"), "trade", "--root", str(project.root),
                          "--day", str(day)], env=prefect_server.env, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, (f"alphaline trade exited {run.returncode}:\n"
                                 f"{run.stderr[-4000:]}\nserver log:\n"
                                 f"{prefect_server.log.read_text()[-3000:]}")

    # what the server recorded: one daily_trading run, completed, with its artifacts
    runs = prefect_server.post("/flow_runs/filter",
                               {"flows": {"name": {"any_": ["daily_trading"]}}})
    assert len(runs) == 1, runs
    flow_run = runs[0]
    assert flow_run["state_type"] == "COMPLETED", flow_run["state"]
    artifacts = prefect_server.post("/artifacts/filter", {
        "artifacts": {"flow_run_id": {"any_": [flow_run["id"]]}}})
    keys = {a["key"] for a in artifacts if a["key"]}
    assert keys >= DAILY_ARTIFACTS, keys
    report = next(a for a in artifacts if a["key"] == "daily-report")
    assert "## Live performance" in report["data"]

    # what a person sees: the run's page, then its Artifacts tab, then the report itself
    browser = Browser(ensure_chromium())
    try:
        browser.visit(f"{prefect_server.url}/runs/flow-run/{flow_run['id']}")
        browser.wait_for_text([flow_run["name"], "daily_trading", "Completed", "Artifacts"])
        browser.click_text("Artifacts")
        # each artifact by key, with its description (rendered a moment after the key)
        browser.wait_for_text([*sorted(keys), f"alphaline daily report for {day}"])
        browser.visit(f"{prefect_server.url}/artifacts/artifact/{report['id']}")
        browser.wait_for_text(["Live performance", str(day)])
    finally:
        browser.close()
