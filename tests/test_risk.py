"""The risk engine: trading states, every pre-trade check, every kill switch, the risk CLI."""

import datetime as dt

import pandas as pd
import pytest
from typer.testing import CliRunner

from alphaline.config import load_params
from alphaline.errors import ConfigError
from alphaline.flows.cli import app
from alphaline.trading.brokers.paper import PaperBroker
from alphaline.trading.costs import CostModel
from alphaline.trading.kill_switches import (
    DayFacts,
    apply_decision,
    evaluate_kill_switches,
    headroom,
)
from alphaline.trading.ledger import Ledger
from alphaline.trading.ledger.models import DailyNav
from alphaline.trading.portfolio import OrderIntent
from alphaline.trading.risk_engine import check_orders
from alphaline.trading.states import ACTIVE, HALTED, REDUCING, escalate
from tests.conftest import REPO, open_ledger

PARAMS = load_params(REPO / "params.yaml")
LIMITS = PARAMS.risk
SWITCHES = LIMITS.kill_switches
DAY = dt.date(2024, 1, 2)
NAV = 1_000_000.0
runner = CliRunner()


def order(symbol="A", side="BUY", qty=100.0, price=10.0, seq=1):
    return OrderIntent(f"{DAY:%Y%m%d}-{symbol}-rebalance-{seq}", DAY, symbol, side, qty, price,
                       "rebalance")


def check(orders, *, holdings=None, working=None, nav=NAV, prev_close=None, adv=None,
          known=(), state=ACTIVE, placed_today=0, limits=LIMITS, **kw):
    names = {o.symbol for o in orders} | set(holdings or {}) | set(working or {})
    return check_orders(
        orders, holdings=holdings or {}, working=working or {}, nav=nav,
        prev_close=prev_close or dict.fromkeys(names, 10.0),
        adv=adv or dict.fromkeys(names, 1e7), limits=limits, known_ids=set(known),
        trading_state=state, placed_today=placed_today, **kw)


def refused(verdict) -> dict[str, str]:
    return {o.symbol: why for o, why in verdict.rejected}


def approved(verdict) -> set[str]:
    return {a.order.symbol for a in verdict.approved}


def sent(verdict) -> set[str]:
    """What a broker accepts: only approvals."""
    broker = PaperBroker(CostModel.from_params(PARAMS.broker))
    return {cid.split("-")[1] for cid in broker.submit(verdict.approved)}


# trading states


def test_trading_state_history_in_the_ledger(tmp_path):
    ledger = open_ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    assert ledger.trading_state() == ACTIVE and ledger.trading_state_event() is None
    ledger.set_trading_state(REDUCING, "slippage review", actor="alice")
    ledger.set_trading_state(HALTED, "broker outage", actor="bob")
    ledger.set_trading_state(ACTIVE, "outage over", actor="bob")
    assert ledger.trading_state() == ACTIVE
    history = ledger.risk_events()
    assert [(e.state, e.reason, e.actor) for e in history] == [
        (ACTIVE, "outage over", "bob"), (HALTED, "broker outage", "bob"),
        (REDUCING, "slippage review", "alice")]
    with pytest.raises(ValueError, match="trading state must be one of"):
        ledger.set_trading_state("PAUSED", "typo")
    with pytest.raises(ValueError, match="needs a reason"):
        ledger.set_trading_state(HALTED, "  ")
    assert len(ledger.risk_events()) == 3  # refused changes wrote nothing


def test_rules_only_escalate():
    assert escalate(ACTIVE, REDUCING) == REDUCING
    assert escalate(REDUCING, HALTED) == HALTED
    assert escalate(HALTED, REDUCING) == HALTED
    assert escalate(REDUCING, None) == REDUCING


def test_halted_refuses_everything_and_sends_nothing():
    verdict = check([order(), order("B", "SELL")], holdings={"B": 100.0}, state=HALTED)
    assert not verdict.approved and sent(verdict) == set()
    assert set(refused(verdict).values()) == {"trading is HALTED"}


def test_unknown_state_refuses_everything():
    verdict = check([order()], state="halted")
    assert not verdict.approved and "unknown trading state" in refused(verdict)["A"]


def test_reducing_lets_only_shrinking_orders_pass():
    verdict = check([order("A", "SELL", 500), order("B", "BUY", 100),
                     order("C", "SELL", 1_500), order("D", "BUY", 200)],
                    holdings={"A": 1_000.0, "C": 1_000.0, "D": -500.0}, state=REDUCING)
    assert approved(verdict) == sent(verdict) == {"A", "D"}
    why = refused(verdict)
    assert "trading is REDUCING: only orders that shrink a position pass" in why["B"]
    assert "+1,000 → -500" in why["C"]  # a flip is not a shrink


# per-order checks


def test_per_name_weight():
    verdict = check([order(qty=9_000)])  # 9 % of NAV > 8 %
    assert not verdict.approved and sent(verdict) == set()
    assert refused(verdict)["A"] == "position weight 9.00% > limit 8.00%"


def test_per_name_weight_counts_working_orders():
    verdict = check([order(qty=4_000)], working={"A": 5_000.0})
    assert refused(verdict)["A"].startswith("position weight 9.00%")


def test_order_notional_maximum():
    verdict = check([order(qty=30_000)], nav=1e7)
    assert refused(verdict)["A"] == "order notional 300,000 > limit 250,000"
    assert not verdict.approved


def test_order_notional_minimum_but_a_close_passes():
    verdict = check([order("A", qty=5), order("B", "SELL", 5)], holdings={"B": 5.0})
    assert refused(verdict) == {"A": "order notional 50 < minimum 100"}
    assert sent(verdict) == {"B"}


def test_price_band_refuses_a_price_ten_times_the_previous_close():
    verdict = check([order(price=100.0, qty=10)], prev_close={"A": 10.0})
    why = refused(verdict)["A"]
    assert why.startswith("price band: price 100 outside ±15% of the previous validated close")
    assert not verdict.approved and sent(verdict) == set()
    assert check([order(price=11.0)], prev_close={"A": 10.0}).approved  # inside the band


def test_price_band_needs_a_previous_close():
    verdict = check([order()], prev_close={"B": 10.0})
    assert "no previous validated close" in refused(verdict)["A"]


def test_fat_finger_against_the_typical_order():
    verdict = check([order(qty=2_000)], typical_quantity={"A": 100.0})
    assert refused(verdict)["A"] == "fat finger: quantity 2,000 > 10× the typical order of 100"
    assert check([order(qty=900)], typical_quantity={"A": 100.0}).approved


def test_fat_finger_against_adv():
    verdict = check([order(qty=6_000)], adv={"A": 10_000.0})
    assert refused(verdict)["A"] == "fat finger: quantity 6,000 is 60% of ADV (limit 50%)"


def test_participation_cap():
    verdict = check([order(qty=6_000)], adv={"A": 100_000.0})
    assert refused(verdict)["A"] == "participation 6.00% of ADV > cap 5.00%"
    assert check([order(qty=5_000)], adv={"A": 100_000.0}).approved
    missing = check([order()], adv={"B": 1e6})
    assert "no average daily volume" in refused(missing)["A"]


def test_duplicate_ids():
    verdict = check([order()], known=[order().client_order_id])
    assert refused(verdict)["A"].startswith("duplicate client order id")
    twice = check([order(), order()])
    assert len(twice.approved) == 1 and twice.rejected[0][1].startswith("duplicate")


def test_orders_per_day_keeps_exits_first():
    verdict = check([order("A"), order("B", "SELL")], holdings={"B": 100.0},
                    placed_today=LIMITS.max_orders_per_day - 1)
    assert sent(verdict) == {"B"}
    assert refused(verdict)["A"].startswith(f"orders per day: {LIMITS.max_orders_per_day} "
                                            "reached")


# book-level checks: refuse what increases the breach, keep the exits


def _book(longs, shorts, weight, price=10.0):
    qty = weight * NAV / price
    return {**{s: qty for s in longs}, **{s: -qty for s in shorts}}


def test_gross_refuses_only_the_orders_that_push_it_over():
    holdings = _book([f"L{i}" for i in range(10)], [f"S{i}" for i in range(10)], 0.07)  # 1.40
    exit_ = order("L0", "SELL", 3_500)  # halves L0: gross −0.035
    entries = [order("N1", "BUY", 5_000), order("N2", "SELL", 5_000),
               order("N3", "BUY", 5_000), order("N4", "SELL", 5_000)]  # +0.20 → 1.565
    verdict = check([exit_, *entries], holdings=holdings)
    why = refused(verdict)
    assert set(why) == {"N1", "N2"}  # the fewest that fit: 1.465 ≤ 1.50
    assert set(why.values()) == {"gross exposure 1.57 > limit 1.50"}
    assert sent(verdict) == {"L0", "N3", "N4"}


def test_net_refuses_the_side_that_breaches_and_keeps_the_exit():
    verdict = check([order("A", qty=7_000), order("B", qty=7_000),
                     order("C", "SELL", 100)], holdings={"C": 100.0})
    assert refused(verdict) == {"A": "net exposure +0.140 outside ±0.100"}
    assert sent(verdict) == {"B", "C"}


def test_net_of_an_unbalanced_batch_does_not_stop_the_other_side():
    # the sized book: two heavy longs, ten shorts; only shorts push net down
    orders = [order(f"L{i}", "BUY", 5_000) for i in range(2)]
    orders += [order(f"S{i}", "SELL", 5_000) for i in range(10)]  # net −0.40
    verdict = check(orders)
    assert {s for s in sent(verdict)} >= {"L0", "L1"}
    assert all(s.startswith("S") for s in refused(verdict))
    assert all(w.startswith("net exposure -0.400") for w in refused(verdict).values())
    assert len(refused(verdict)) == 6  # 4 shorts left: net −0.10 fits


def test_sector_exposure_when_sectors_are_given():
    tech, energy = ["A", "B", "F", "D", "E"], ["C", "G", "H", "I", "J"]
    sectors = {**dict.fromkeys(tech, "tech"), **dict.fromkeys(energy, "energy")}
    holdings = _book(["A", "B", "F"], ["C", "G", "H"], 0.07)
    orders = [order("D", qty=7_000), order("E", qty=7_000), order("I", "SELL", 7_000),
              order("J", "SELL", 7_000)]
    assert len(check(orders, holdings=holdings).approved) == 4  # no sectors: not checked
    verdict = check(orders, holdings=holdings, sectors=sectors)
    why = refused(verdict)
    assert why == {"D": "sector tech exposure +0.350 outside ±0.300",
                   "I": "sector energy exposure -0.350 outside ±0.300"}
    assert sent(verdict) == {"E", "J"}


def test_beta_exposure_when_betas_are_given():
    betas = {"A": 3.0, "B": 3.0, "C": 0.5, "D": 0.5}
    orders = [order("A", qty=6_000), order("C", "SELL", 6_000), order("B", qty=6_000),
              order("D", "SELL", 6_000)]
    assert len(check(orders).approved) == 4
    verdict = check(orders, betas=betas)  # 0.36 − 0.06 = +0.30 > 0.20
    assert refused(verdict) == {"A": "beta exposure +0.300 outside ±0.200"}
    assert sent(verdict) == {"B", "C", "D"}


def test_a_held_name_without_a_close_stops_new_risk_not_exits():
    verdict = check([order("A"), order("B", "SELL", 100)], holdings={"B": 100.0, "Z": 50.0},
                    prev_close={"A": 10.0, "B": 10.0})
    assert sent(verdict) == {"B"}
    assert "cannot value held Z" in refused(verdict)["A"]


# kill switches


def _nav(values, end=DAY):
    days = pd.bdate_range(end=end, periods=len(values)).date
    return pd.DataFrame({"day": days, "nav": values})


def _facts(**kw):
    return DayFacts(**{"day": DAY, "last_data_day": DAY, **kw})


def test_daily_loss_halts_and_cancels_working_orders():
    d = evaluate_kill_switches(_nav([1e6, 1e6, 0.94e6]), _facts(), SWITCHES)
    assert d.state == HALTED and d.cancel_working and d.scale == 0.0
    assert d.rules[0] == "daily_loss" and d.reasons[0].startswith("daily loss 6.00% > limit")
    assert d.keep_fraction is None  # halted: nothing trades, not even the crash tier's sales


def test_drawdown_from_peak_halts():
    values = [1e6 * 0.99 ** k for k in range(25)]  # −1 % a day: 21.4 % below the peak
    d = evaluate_kill_switches(_nav(values), _facts(), SWITCHES)
    assert d.state == HALTED and d.cancel_working and "drawdown" in d.rules
    assert any(r.startswith("drawdown 21.") for r in d.reasons)


@pytest.mark.parametrize(("speed", "tier", "scale", "state"), [
    (0.003, "gradual", 0.75, None), (0.007, "moderate", 0.50, None),
    (0.014, "fast", 0.35, None), (0.030, "crash", 0.25, REDUCING)])
def test_velocity_tiers_scale_the_book(speed, tier, scale, state):
    values = [1e6] + [0.98e6] * 6 + [0.98e6 * (1 - speed) ** k for k in range(1, 6)]
    d = evaluate_kill_switches(_nav(values), _facts(), SWITCHES)
    assert d.rules == (f"velocity_{tier}",) and d.scale == scale and d.state == state
    assert d.keep_fraction == (scale if tier == "crash" else None)
    assert not d.cancel_working and d.no_trade_reason is None


def test_velocity_needs_a_drawdown():
    values = [1e6, 1.05e6, 1.04e6]  # −1 % in a session but 1 % below the peak
    d = evaluate_kill_switches(_nav(values), _facts(), SWITCHES)
    assert not d.fired and d.scale == 1.0 and d.state is None


def test_stale_data_means_no_trading_today():
    d = evaluate_kill_switches(_nav([1e6]), _facts(last_data_day=DAY - dt.timedelta(days=1)),
                               SWITCHES)
    assert d.state is None and d.rules == ("stale_data",)
    assert d.no_trade_reason == ("stale data: the newest validated bar is from 2024-01-01, the "
                                 "trading day is 2024-01-02")


def test_slippage_beyond_the_cost_model_reduces():
    d = evaluate_kill_switches(_nav([1e6, 1e6]), _facts(realized_slippage=400.0,
                                                        estimated_slippage=100.0), SWITCHES)
    assert d.state == REDUCING and d.rules == ("slippage",) and "4.0×" in d.reasons[0]
    calm = evaluate_kill_switches(_nav([1e6, 1e6]), _facts(realized_slippage=250.0,
                                                           estimated_slippage=100.0), SWITCHES)
    assert not calm.fired


def test_champion_that_cannot_load_stops_trading():
    d = evaluate_kill_switches(_nav([1e6]), _facts(champion_error="no version aliased"),
                               SWITCHES)
    assert d.no_trade_reason == "champion cannot be loaded: no version aliased"
    assert d.state is None and d.rules == ("champion",)


def test_applying_a_halt_writes_once_cancels_working_and_refuses_orders(tmp_path):
    ledger = open_ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    yesterday = DAY - dt.timedelta(days=1)
    working = check([OrderIntent(f"{yesterday:%Y%m%d}-A-rebalance-1", yesterday, "A", "BUY",
                                 100.0, 10.0, "rebalance")])
    ledger.add_orders(working.approved, [], broker="paper", model_version=None,
                      expires_on=None)
    ledger.transition(working.approved[0].order.client_order_id, "SUBMITTED", "sent")
    d = evaluate_kill_switches(_nav([1e6, 0.9e6]), _facts(), SWITCHES)
    assert apply_decision(ledger, d) == HALTED
    assert apply_decision(ledger, d) == HALTED
    events = ledger.risk_events(day=DAY)
    assert len(events) == 1 and events[0].actor.startswith("rule:daily_loss")
    from alphaline.trading.kill_switches import cancel_working

    assert cancel_working(ledger, "daily loss") == [working.approved[0].order.client_order_id]
    assert ledger.working_orders() == []
    verdict = check([order()], state=ledger.trading_state())
    assert sent(verdict) == set() and refused(verdict)["A"] == "trading is HALTED"
    # a person resumes; a rerun of the same day with the same facts does not re-halt
    ledger.set_trading_state(ACTIVE, "reviewed: data error", actor="carol")
    assert apply_decision(ledger, d) == ACTIVE and ledger.trading_state() == ACTIVE


def test_headroom_measures_how_far_each_switch_is():
    rows = {r["rule"]: r for r in headroom(_nav([1e6, 0.98e6]), SWITCHES)}
    assert rows["daily_loss"]["value"] == pytest.approx(0.02)
    assert rows["daily_loss"]["headroom"] == pytest.approx(0.03)
    assert rows["drawdown"]["headroom"] == pytest.approx(0.18)


# configuration: hard ceilings and a book that fits the limits


@pytest.mark.parametrize(("key", "value"), [
    ("risk.max_order_notional", 1e8), ("risk.max_participation", 0.5),
    ("risk.max_orders_per_day", 100_000), ("risk.kill_switches.max_daily_loss", 0.5),
    ("risk.max_sector_exposure", 0.9), ("risk.price_band", 0.9)])
def test_every_limit_has_a_hard_ceiling(key, value):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        PARAMS.with_overrides({key: value})


@pytest.mark.parametrize(("overrides", "message"), [
    ({"portfolio.method": "long_only_top_k"}, "above risk.max_net_exposure"),
    ({"portfolio.beta_neutral": True, "portfolio.max_beta_exposure": 0.3,
      "risk.max_beta_exposure": 0.2}, r"exceeds risk\.max_beta_exposure"),
    ({"risk.max_order_notional": 10_000.0}, r"exceeds risk\.max_order_notional"),
    ({"risk.max_orders_per_day": 10}, r"above risk\.max_orders_per_day"),
    ({"risk.min_order_notional": 5_000.0}, r"below risk\.min_order_notional"),
])
def test_params_whose_book_could_breach_the_limits_are_refused(overrides, message):
    with pytest.raises(ConfigError, match=message):
        PARAMS.with_overrides(overrides)


def test_velocity_tiers_must_escalate():
    tiers = [{"name": "a", "loss_per_session": 0.01, "scale": 0.5},
             {"name": "b", "loss_per_session": 0.02, "scale": 0.8}]
    with pytest.raises(ConfigError, match="scale no higher"):
        PARAMS.with_overrides({"risk.kill_switches.velocity.tiers": tiers})


# the CLI on a real ledger


def test_risk_cli_changes_and_shows_the_state(project):
    root = ["--root", str(project.root)]
    assert runner.invoke(app, ["db", "upgrade", *root]).exit_code == 0
    assert runner.invoke(app, ["risk", "reduce", "--reason", "slippage review", *root]
                         ).exit_code == 0
    assert Ledger(project.ledger_url).trading_state() == REDUCING
    halt = runner.invoke(app, ["risk", "halt", "--reason", "broker outage", *root])
    assert halt.exit_code == 0 and "0 working orders cancelled" in halt.output
    status = runner.invoke(app, ["risk", "status", *root])
    assert status.exit_code == 0
    assert "state    HALTED" in status.output and "broker outage" in status.output
    assert "slippage review" in status.output  # the history
    assert "headroom" not in status.output  # no NAV yet
    assert runner.invoke(app, ["risk", "resume", *root]).exit_code == 2  # --reason required
    assert runner.invoke(app, ["risk", "resume", "--reason", "outage over", *root]
                         ).exit_code == 0
    ledger = Ledger(project.ledger_url)
    assert ledger.trading_state() == ACTIVE
    assert [e.state for e in ledger.risk_events()] == [ACTIVE, HALTED, REDUCING]
    with ledger.session() as s, s.begin():
        for day, nav in ((DAY, 1e6), (DAY + dt.timedelta(days=1), 0.97e6)):
            s.add(DailyNav(day=day, cash=nav, long_value=0.0, short_value=0.0, nav=nav,
                           gross_exposure=0.0, net_exposure=0.0))
    status = runner.invoke(app, ["risk", "status", *root])
    assert "headroom" in status.output and "daily_loss" in status.output
    assert "+2.00%" in status.output  # 3 % lost of a 5 % daily limit
