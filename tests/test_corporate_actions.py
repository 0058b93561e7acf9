"""Splits and dividends reach the ledger as events, once, and leave NAV where it should be;
a held name without a bar is marked at its last price, never a crash."""

import datetime as dt

import pandas as pd
import pytest

from alphaline.calendar import sessions
from alphaline.errors import DataRejected
from alphaline.trading.corporate_actions import (
    Action,
    actions_on,
    average_cost,
    split_ratios,
)
from alphaline.trading.daily import DayResult, report_markdown
from alphaline.trading.ledger.models import CorporateAction, Fill, Order, PositionAdjustment
from alphaline.trading.marks import last_closes, suspected_delistings
from tests.conftest import open_ledger

D0, D1, D2 = dt.date(2024, 3, 1), dt.date(2024, 3, 4), dt.date(2024, 3, 5)
CASH = 1_000_000.0


def seed(ledger, positions: dict[str, tuple[float, float]], day: dt.date = D0) -> None:
    """Book ``symbol: (signed shares, price)`` as filled orders on ``day``, at no cost."""
    ledger.ensure_initial_cash(day, CASH)
    with ledger.session() as s, s.begin():
        for sym, (qty, price) in positions.items():
            cid = f"{day:%Y%m%d}-{sym}-rebalance"
            s.add(Order(client_order_id=cid, trading_day=day, symbol=sym, intent="rebalance",
                        side="BUY" if qty > 0 else "SELL", quantity=abs(qty),
                        reference_price=price, status="FILLED", broker="paper",
                        approved=True, filled_quantity=abs(qty)))
            s.flush()
            s.add(Fill(fill_id=f"{cid}-1", client_order_id=cid, day=day, symbol=sym,
                       quantity=qty, price=price, commission=0.0, slippage=0.0))


def bars(day: dt.date, rows: dict[str, dict]) -> pd.DataFrame:
    return pd.DataFrame([{"symbol": s, "date": pd.Timestamp(day), "open": r["close"],
                          "high": r["close"], "low": r["close"], "volume": 1e6,
                          "split_ratio": 1.0, "dividend": 0.0, **r} for s, r in rows.items()])


@pytest.fixture
def ledger(tmp_path):
    return open_ledger(f"sqlite:///{tmp_path / 'ledger.db'}")


def test_two_for_one_split_doubles_shares_halves_price_and_keeps_nav(ledger):
    seed(ledger, {"LONG": (100.0, 50.0), "SHORT": (-200.0, 20.0)})
    before = ledger.mark_to_market(D0, {"LONG": 50.0, "SHORT": 20.0})
    day = bars(D1, {"LONG": {"close": 25.0, "split_ratio": 2.0},
                    "SHORT": {"close": 10.0, "split_ratio": 2.0},
                    "OTHER": {"close": 7.0, "split_ratio": 3.0}})  # not held: recorded only

    added = ledger.apply_corporate_actions(actions_on(day, D1), "test-source")

    assert {a.symbol: a.quantity for a in added} == {"LONG": 100.0, "SHORT": -200.0}
    assert ledger.holdings(through=D1) == {"LONG": 200.0, "SHORT": -400.0}
    assert ledger.holdings(through=D0) == {"LONG": 100.0, "SHORT": -200.0}  # from D1 on
    basis = ledger.cost_basis(through=D1)
    assert basis["LONG"] == pytest.approx((200.0, 25.0))
    assert basis["SHORT"] == pytest.approx((-400.0, 10.0))
    after = ledger.mark_to_market(D1, {"LONG": 25.0, "SHORT": 10.0})
    assert after.nav == pytest.approx(before.nav) and after.cash == pytest.approx(before.cash)
    assert after.long_value == pytest.approx(5000.0) and after.short_value == pytest.approx(-4000)
    assert len(ledger.table(CorporateAction)) == 3


def test_a_dividend_is_credited_to_a_long_and_paid_by_a_short(ledger):
    seed(ledger, {"LONG": (100.0, 50.0), "SHORT": (-200.0, 20.0)})
    cash = ledger.cash(through=D1)
    ledger.apply_corporate_actions(actions_on(bars(D1, {"LONG": {"close": 50.0, "dividend": 0.5}}),
                                              D1), "test-source")
    assert ledger.cash(through=D1) == pytest.approx(cash + 50.0)
    ledger.apply_corporate_actions([Action(D2, "SHORT", "dividend", 0.25)], "test-source")
    assert ledger.cash(through=D2) == pytest.approx(cash + 50.0 - 50.0)
    assert ledger.cash(through=D1) == pytest.approx(cash + 50.0)  # the short pays on D2
    causes = [a.cause for a in ledger.adjustments()]
    assert "received" in causes[0] and "paid (short)" in causes[1]
    assert ledger.holdings(through=D2) == {"LONG": 100.0, "SHORT": -200.0}


def test_applying_the_same_day_twice_changes_nothing(ledger):
    seed(ledger, {"LONG": (100.0, 50.0)})
    day = bars(D1, {"LONG": {"close": 25.0, "split_ratio": 2.0, "dividend": 0.1}})
    first = ledger.apply_corporate_actions(actions_on(day, D1), "test-source")
    state = ledger.holdings(through=D1), ledger.cash(through=D1)
    again = ledger.apply_corporate_actions(actions_on(day, D1), "test-source")
    assert len(first) == 2 and again == []
    assert (ledger.holdings(through=D1), ledger.cash(through=D1)) == state
    assert len(ledger.table(PositionAdjustment)) == 2 and len(ledger.table(CorporateAction)) == 2
    # both apply to the shares held at the previous close: the dividend is 100 × 0.1
    assert state == ({"LONG": 200.0}, pytest.approx(CASH - 5000.0 + 10.0))


def test_a_fill_on_the_ex_date_is_not_split_again(ledger):
    seed(ledger, {"LONG": (100.0, 50.0)})
    seed(ledger, {"LONG": (30.0, 25.0)}, day=D1)  # bought at D1's (post-split) close
    ledger.apply_corporate_actions([Action(D1, "LONG", "split", 2.0)], "test-source")
    assert ledger.holdings(through=D1) == {"LONG": 230.0}


def test_a_source_that_changes_a_recorded_action_is_refused(ledger):
    seed(ledger, {"LONG": (100.0, 50.0)})
    ledger.apply_corporate_actions([Action(D1, "LONG", "split", 2.0)], "test-source")
    with pytest.raises(DataRejected, match=r"ledger holds 2 .* now says 3"):
        ledger.apply_corporate_actions([Action(D1, "LONG", "split", 3.0)], "test-source")
    assert ledger.holdings(through=D1) == {"LONG": 200.0}


@pytest.mark.parametrize(("column", "value"), [("split_ratio", 0.0), ("split_ratio", -2.0),
                                               ("dividend", -1.0)])
def test_impossible_action_values_stop_the_day(column, value):
    with pytest.raises(DataRejected, match=f"{column} of A on {D1}"):
        actions_on(bars(D1, {"A": {"close": 1.0, column: value}}), D1)


def test_split_ratios_name_only_the_splits():
    day = bars(D1, {"A": {"close": 1.0, "split_ratio": 4.0, "dividend": 0.2},
                    "B": {"close": 1.0, "dividend": 0.1}})
    assert split_ratios(actions_on(day, D1)) == {"A": 4.0}


def test_no_action_columns_means_no_actions():
    frame = bars(D1, {"A": {"close": 1.0}}).drop(columns=["split_ratio", "dividend"])
    assert actions_on(frame, D1) == []


def test_average_cost_reduces_pro_rata_and_restarts_after_crossing_zero():
    assert average_cost([(100, 10.0, 0), (100, 20.0, 0), (-50, 30.0, 0)]) == (150, 2250.0)
    assert average_cost([(100, 10.0, 0), (-150, 12.0, 0)]) == (-50, -600.0)
    assert average_cost([(100, 10.0, 0), (100, None, 0.0)]) == (200, 1000.0)  # 2:1 split


def calendar_sessions(n: int, start: dt.date) -> list[dt.date]:
    return [d.date() for d in sessions("XNYS", start, start + dt.timedelta(days=2 * n + 10))[:n]]


def test_a_held_name_without_a_bar_is_marked_stale_then_reported_as_delisting(ledger):
    days = calendar_sessions(8, dt.date(2024, 3, 25))  # spans Good Friday (2024-03-29)
    seed(ledger, {"LIVE": (100.0, 10.0), "GONE": (-50.0, 40.0)}, day=days[0])
    history = pd.concat([bars(days[0], {"LIVE": {"close": 10.0}, "GONE": {"close": 40.0}}),
                         bars(days[1], {"LIVE": {"close": 11.0}, "GONE": {"close": 38.0}})])
    for day in days[:2]:
        ledger.mark_to_market(day, {"LIVE": 10.0, "GONE": 40.0} if day == days[0]
                              else {"LIVE": 11.0, "GONE": 38.0}, calendar="XNYS")
    seen = []
    for i, day in enumerate(days[2:], start=1):
        history = pd.concat([history, bars(day, {"LIVE": {"close": 11.0 + i}})])
        nav = ledger.mark_to_market(day, {"LIVE": 11.0 + i}, last_closes(history, day), "XNYS")
        stale = ledger.stale_marks(day)
        assert [(m.symbol, m.price, m.price_day, m.stale_sessions) for m in stale] == \
            [("GONE", 38.0, days[1], i)]
        assert nav.short_value == pytest.approx(-50 * 38.0)
        seen.append(suspected_delistings(stale, 5))
    assert seen == [[], [], [], [], ["GONE"], ["GONE"]]


def test_marking_falls_back_to_the_ledger_when_the_caller_knows_no_price(ledger):
    seed(ledger, {"A": (10.0, 5.0)})
    nav = ledger.mark_to_market(D1, {})  # no bars at all: the fill's price, weekdays counted
    assert nav.long_value == pytest.approx(50.0)
    assert [(m.price_day, m.stale_sessions) for m in ledger.stale_marks(D1)] == [(D0, 1)]
    ledger.mark_to_market(D2, {})  # now from D1's position row, still priced on D0
    assert [(m.price_day, m.stale_sessions) for m in ledger.stale_marks(D2)] == [(D0, 2)]


def test_report_lists_stale_names_suspected_delistings_and_actions(ledger):
    result = DayResult(day=D1, model_version="1", signals=0, fills=0,
                       corporate_actions=["split 2:1 on 2024-03-04: 100 → 200 shares"],
                       stale_marks=[{"symbol": "GONE", "price_day": "2024-02-23",
                                     "price": 38.0, "sessions": 6}],
                       suspected_delistings=["GONE"])
    scores = pd.DataFrame({"symbol": ["A"], "score": [0.1], "reasons": [[]]})
    text = report_markdown(result, scores, ledger)
    assert "## Corporate actions" in text and "split 2:1" in text
    assert "| GONE | 38.0000 | 2024-02-23 | 6 | yes |" in text
