from alphaline.config import load_params
from alphaline.models.gate import decide
from tests.conftest import REPO

BARS = load_params(REPO / "params.yaml").gate


def metrics(rank_ic=0.05, dsr=0.99, n_trials=10):
    return {"rank_ic": rank_ic, "deflated_sharpe": dsr, "n_trials": n_trials}


def test_promotes_when_every_bar_is_cleared():
    d = decide(metrics(), None, BARS)
    assert d.promote and "no current champion" in d.reasons
    assert d.as_tags()["gate.decision"] == "promote"


def test_refuses_low_deflated_sharpe():
    d = decide(metrics(dsr=0.6), None, BARS)
    assert not d.promote and any("DSR 0.600 < 0.95 over 10 trials" in r for r in d.reasons)


def test_refuses_non_positive_rank_ic():
    assert not decide(metrics(rank_ic=-0.01), None, BARS).promote


def test_must_match_the_champion_on_the_same_folds():
    assert not decide(metrics(rank_ic=0.04), metrics(rank_ic=0.05), BARS).promote
    d = decide(metrics(rank_ic=0.06), metrics(rank_ic=0.05), BARS)
    assert d.promote and any("champion's 0.0500" in r for r in d.reasons)


def test_a_suspected_leak_refuses_even_a_strong_model():
    leak = {"feature": "leaked", "rule": "|ρ| with the label 1.000 > 0.9"}
    d = decide(metrics(rank_ic=0.3, dsr=1.0), None, BARS, leaks=[leak])
    assert not d.promote
    assert any("suspected leak in leaked" in r for r in d.reasons)


def test_reports_paths_won_against_the_champion():
    d = decide({**metrics(rank_ic=0.06), "paths_won": 4, "n_paths": 5}, metrics(rank_ic=0.05),
               BARS)
    assert d.promote and any("better on 4 of 5 paths" in r for r in d.reasons)
