"""``broker.kind: ibkr``: the daily flow, unchanged, end to end against the fake TWS, and
``alphaline broker check`` against it."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from alphaline.flows.cli import app
from alphaline.flows.daily_trading import daily_trading
from alphaline.pipelines.synthetic import generate_market
from alphaline.trading.brokers.ibkr import ENV_CLIENT_ID, ENV_PORT
from alphaline.trading.ledger import Ledger
from tests.fake_tws import NEW_YORK, FakeTws
from tests.test_daily_flow import copy_project, trading_days


def at_close(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(16, 0), NEW_YORK)


def use_ibkr(project) -> None:
    raw = yaml.safe_load((project.root / "params.yaml").read_text())
    raw["broker"]["kind"] = "ibkr"
    raw["broker"]["ibkr"].update(requests_per_second=0, backoff_seconds=0.05,
                                 ack_timeout_seconds=5.0)
    (project.root / "params.yaml").write_text(yaml.safe_dump(raw))


@pytest.mark.slow
@pytest.mark.timeout(3600)  # the shared trained project alone takes minutes on a busy machine
def test_the_daily_flow_trades_through_ibkr_and_the_ledger_is_the_account(
        trained_project, tmp_path, monkeypatch):
    project = copy_project(trained_project, tmp_path / "p")
    use_ibkr(project)
    fake = FakeTws(cash=project.params.broker.initial_cash).start()
    monkeypatch.setenv(ENV_PORT, str(fake.port))
    monkeypatch.setenv(ENV_CLIENT_ID, "11")
    d1, d2, d3 = trading_days(project, 3)
    syn = project.params.data.synthetic
    bars, _ = generate_market(syn.n_symbols, project.params.data.start, d3, syn.seed,
                              syn.alpha_strength, syn.mode)

    def closes(day: dt.date) -> dict[str, float]:
        return bars[bars["date"] == pd.Timestamp(day)].set_index("symbol")["close"].to_dict()

    try:
        fake.clock = at_close(d1)
        first = daily_trading(day=d1, root=str(project.root))
        sent = first["orders_submitted"]
        assert sent and fake.sent_counts() == dict.fromkeys(sent, 1)
        assert {o.order_type for o in fake.orders.values()} <= {"MOC", "MKT"}
        fake.clock = at_close(d2)
        fake.close_session(closes(d2))  # the orders decided at d1 fill at d2's close
        second = daily_trading(day=d2, root=str(project.root))
        assert second["fills"] == len(sent)
        rerun = daily_trading(day=d2, root=str(project.root))
        assert rerun["orders_submitted"] == [] and rerun["fills"] == 0
        fake.clock = at_close(d3)
        fake.close_session(closes(d3))
        daily_trading(day=d3, root=str(project.root))

        ledger = Ledger(project.ledger_url)
        assert ledger.holdings() == pytest.approx(fake.positions)
        assert set(ledger.holdings()) == set(fake.positions)
        assert ledger.cash() == pytest.approx(fake.cash, abs=1e-6)
        assert set(fake.sent_counts().values()) == {1}  # no order reached the server twice
        assert set(fake.sent_counts()) == {o.client_order_id for o in ledger.orders()
                                           if o.approved}
        report = (project.reports_dir / "reconciliation" / f"{d3}.md").read_text()
        assert "status: OK" in report
        assert ledger.trading_state() == "ACTIVE"

        checked = CliRunner().invoke(app, ["broker", "check", "--root", str(project.root)])
        assert checked.exit_code == 0, checked.output
        assert "TotalCashValue" in checked.output and "status: OK" in checked.output
        assert fake.account not in checked.output  # the account id is never printed
        fake.external_trade("ZZZ", 10, 5.0)
        mismatch = CliRunner().invoke(app, ["broker", "check", "--root", str(project.root)])
        assert mismatch.exit_code == 5 and "ZZZ" in mismatch.output
        assert Ledger(project.ledger_url).trading_state() == "ACTIVE"  # a check writes nothing
    finally:
        fake.stop()
