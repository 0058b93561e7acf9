import numpy as np
import pandas as pd
import pytest

from alphaline.calendar import sessions
from alphaline.features.compute import compute_labels
from alphaline.models.metrics import long_short_returns
from alphaline.models.monitoring import (
    book_tracking,
    cusum_decay,
    data_health,
    live_ic,
    live_summary,
    retrain_decision,
    sessions_behind,
)
from alphaline.pipelines.synthetic import generate_market


@pytest.fixture(scope="module")
def market():
    bars, planted = generate_market(40, "2022-01-03", "2022-12-30", seed=3, alpha_strength=0.3)
    signals = planted.dropna().rename(columns={"signal": "score"})
    return bars, signals, compute_labels(bars, 1)


def test_live_ic_joins_signals_with_the_labels_that_have_realized(market):
    bars, signals, labels = market
    series = live_ic(signals, labels)
    days = sorted(bars["date"].unique())
    # the last 1 + h sessions have no realized label yet
    assert series.index.max() == days[-3]
    assert (series["n"] == 40).all()
    summary = live_summary(series)
    assert summary["rank_ic"] > 0.1 and summary["hit_rate"] > 0.6
    assert summary["sessions"] == len(series)
    # scrambled scores earn nothing
    shuffled = signals.assign(score=np.random.default_rng(0).permutation(signals["score"]))
    assert abs(live_summary(live_ic(shuffled, labels))["rank_ic"]) < 0.03


def _days(n: int) -> pd.DatetimeIndex:
    return sessions("XNYS", "2020-01-02", "2023-12-29")[:n]


def test_one_bad_day_does_not_fire_a_sustained_drop_does():
    expected, sd = 0.05, 0.08
    ic = pd.Series(np.full(100, expected), index=_days(100))
    ic.iloc[50] = -0.6  # one awful day
    assert not cusum_decay(ic, expected, sd, threshold=9.0).alarm
    ic.iloc[60:] = -0.02  # from day 60 the signal stopped paying
    test = cusum_decay(ic, expected, sd, threshold=9.0)
    assert test.alarm and test.alarm_day > ic.index[60]
    assert test.statistic.loc[:test.alarm_day].iloc[:-1].max() < 9.0 <= test.statistic[
        test.alarm_day]
    assert "decay" in test.reason() and test.as_dict()["alarm_day"] == str(test.alarm_day.date())


def test_cusum_false_alarms_are_rare_and_detection_follows_the_information():
    rng = np.random.default_rng(1)
    expected, sd, threshold, n = 0.05, 0.1, 9.0, 250
    idx = _days(n)
    false = sum(cusum_decay(pd.Series(rng.normal(expected, sd, n), index=idx), expected, sd,
                            threshold).alarm for _ in range(200))
    assert false <= 10  # ≤ 5 % of 250-session runs
    delays = []
    for _ in range(200):
        test = cusum_decay(pd.Series(rng.normal(0.0, sd, n), index=idx), expected, sd, threshold)
        delays.append(idx.get_loc(test.alarm_day) + 1 if test.alarm else n)
    kl = (expected / sd) ** 2 / 2  # information per session against "decayed"
    assert threshold / kl * 0.7 < np.median(delays) < threshold / kl * 1.6


def test_nothing_expected_nothing_decays_and_bad_inputs_are_refused():
    ic = pd.Series(np.full(50, -0.3), index=_days(50))
    assert not cusum_decay(ic, 0.0, 0.1, 5.0).alarm
    with pytest.raises(ValueError, match="standard deviation"):
        cusum_decay(ic, 0.05, 0.0, 5.0)
    with pytest.raises(ValueError, match="decayed_fraction"):
        cusum_decay(ic, 0.05, 0.1, 5.0, decayed_fraction=1.0)


def test_book_tracking_compares_the_ledger_nav_with_the_research_book(market):
    bars, signals, labels = market
    cal = pd.DatetimeIndex(sorted(bars["date"].unique()))
    expected = long_short_returns(signals.merge(labels), 0.2, 1)
    # a NAV that earned exactly the research book: signal day t's return over t+1 → t+2
    nav = pd.Series(1e6, index=cal)
    for day, r in expected.items():
        i = cal.get_loc(day)
        if i + 2 < len(cal):
            nav.iloc[i + 2] = nav.iloc[i + 1] * (1 + r)
    frame = nav.rename("nav").rename_axis("day").reset_index()
    out = book_tracking(signals, labels, frame, cal, 0.2, 1)
    assert out["sessions"] > 200
    assert out["realized_return"] == pytest.approx(out["expected_return"], rel=1e-9)
    flat = frame.assign(nav=1e6)
    out = book_tracking(signals, labels, flat, cal, 0.2, 1)
    assert out["realized_return"] == 0 and out["tracking_difference"] < -0.1
    assert book_tracking(signals, labels, frame.iloc[:0], cal, 0.2, 1)["sessions"] == 0


def test_data_health_counts_staleness_missing_bars_and_quarantine():
    window = _days(10)
    rows = [(s, d) for s in ("A", "B", "C", "D") for d in window]
    bars = pd.DataFrame(rows, columns=["symbol", "date"])
    bars = bars[~((bars["symbol"] == "B") & bars["date"].isin(window[3:5]))]  # two gaps
    bars = bars[~((bars["symbol"] == "C") & (bars["date"] > window[6]))]  # 3 sessions behind
    health = data_health(bars, window, {"D": ["close out of band"], "Z": ["not held"]})
    assert health["universe"] == 4 and health["bars_expected"] == 40
    assert health["bars_missing"] == 5 and health["missing_share"] == pytest.approx(5 / 40)
    assert health["stale_symbols"] == {"C": 3} and health["max_staleness_sessions"] == 3
    assert health["quarantined"] == ["D"] and health["quarantined_share"] == 0.25
    assert sessions_behind(window[-1], window[-1], window) == 0
    assert sessions_behind(None, window[-1], window) is None


def test_retrain_needs_a_reason_and_waits_out_the_cooldown():
    ic = pd.Series(np.full(60, -0.2), index=_days(60))
    decayed = cusum_decay(ic, 0.05, 0.1, 5.0)
    assert retrain_decision(None, [], 100, 20).retrain is False
    due = retrain_decision(decayed, ["dead features: x"], 100, 20)
    assert due.retrain and len(due.reasons) == 2 and due.reason().startswith("decay")
    held = retrain_decision(decayed, [], 5, 20)
    assert not held.retrain and held.reasons and "cooldown" in held.suppressed
    assert retrain_decision(decayed, [], None, 20).retrain  # never retrained: no cooldown


def test_synthetic_regime_switch_turns_the_alpha_off_and_keeps_the_default():
    kw = dict(n_symbols=40, start="2022-01-03", end="2022-12-30", seed=4, alpha_strength=0.3)
    bars, _ = generate_market(**kw)
    same, _ = generate_market(**kw, alpha_until=None)
    pd.testing.assert_frame_equal(bars, same)
    switched, planted2 = generate_market(**kw, alpha_until="2022-06-30")
    before = bars["date"] <= "2022-06-30"  # bars up to the switch are untouched
    pd.testing.assert_frame_equal(bars[before], switched[before])
    series = live_ic(planted2.dropna().rename(columns={"signal": "score"}),
                     compute_labels(switched, 1))
    assert series.loc[:"2022-06-24", "rank_ic"].mean() > 0.1
    assert abs(series.loc["2022-07-05":, "rank_ic"].mean()) < 0.05
