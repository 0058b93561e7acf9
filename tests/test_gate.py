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
    assert not d.promote
    assert any("DSR 0.600 (after costs) < 0.95 over 10 trials" in r for r in d.reasons)


def test_refuses_non_positive_rank_ic():
    assert not decide(metrics(rank_ic=-0.01), None, BARS).promote


def test_rank_ic_only_champion_needs_more_than_a_tie():
    assert not decide(metrics(rank_ic=0.05), metrics(rank_ic=0.05), BARS).promote
    d = decide(metrics(rank_ic=0.06), metrics(rank_ic=0.05), BARS)
    assert d.promote and any("champion's 0.0500" in r for r in d.reasons)


def champ(sharpe_net=1.0, p_value=0.01, rank_ic=0.04):
    return {"rank_ic": rank_ic, "sharpe_net": sharpe_net, "p_value": p_value,
            "edge_per_session": 1e-4}


def test_the_champion_stays_unless_the_after_cost_edge_is_significant():
    better = {**metrics(), "sharpe_net": 1.5, "paths_won": 4, "n_paths": 5}
    d = decide(better, champ(p_value=0.01), BARS)
    assert d.promote and any("better on 4 of 5 paths" in r and "significant" in r
                             for r in d.reasons)
    d = decide(better, champ(p_value=0.30), BARS)
    assert not d.promote and any("not significant, the champion stays" in r
                                 for r in d.reasons)
    tie = {**metrics(), "sharpe_net": 1.0}
    assert not decide(tie, champ(sharpe_net=1.2, p_value=0.6), BARS).promote


def test_a_baseline_that_beats_the_model_refuses_it():
    m = {**metrics(), "sharpe_net": 0.8}
    d = decide(m, None, BARS, baselines={"equal_weight": 0.3, "reversal_1m": 1.1})
    assert not d.promote
    assert any("best baseline reversal_1m 1.10: lift -0.30" in r for r in d.reasons)
    assert decide({**m, "sharpe_net": 1.4}, None, BARS,
                  baselines={"equal_weight": 0.3, "reversal_1m": 1.1}).promote
    off = BARS.model_copy(update={"min_lift_over_baseline": None})
    d = decide(m, None, off, baselines={"reversal_1m": 1.1})
    assert d.promote and any("baseline limit off" in r for r in d.reasons)


def test_reasons_name_the_family_trial_count_and_variance():
    m = {**metrics(dsr=0.97, n_trials=64), "trial_sharpe_variance": 0.0012,
         "dsr_source": "CPCV after costs"}
    d = decide(m, None, BARS)
    assert any("DSR 0.970 (CPCV after costs) ≥ 0.95 over 64 trials of the recipe family, "
               "trial Sharpe variance 1.20e-03" in r for r in d.reasons)


def test_a_suspected_leak_refuses_even_a_strong_model():
    leak = {"feature": "leaked", "rule": "|ρ| with the label 1.000 > 0.9"}
    d = decide(metrics(rank_ic=0.3, dsr=1.0), None, BARS, leaks=[leak])
    assert not d.promote
    assert any("suspected leak in leaked" in r for r in d.reasons)
