"""Non-finite inputs stay inside their windows, for every feature of every set.

The kernels see the raw panel here (no cleaning on the way in): runs of +inf, -inf or NaN
in any price or volume field, and zero volumes (whose ratios are ±inf or NaN), at random
places. Once a feature's window has passed the damage, it must be finite wherever the same
feature on the undamaged data is.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alphaline.features.compute import FIELDS, _generate, to_panel
from alphaline.features.definitions import SETS, feature_names, get
from alphaline.pipelines.synthetic import generate_market

DEFS = get(feature_names(SETS))
OPTIONS = {"risk": {"garch_refit_every": 63}}
SESSIONS = 560
FIRST_DAMAGE, LAST_DAMAGE = 262, 290  # after the first GARCH fit, before its window ends
SLACK = 2  # a difference reaches one row back (returns), plus the row itself


@pytest.fixture(scope="module")
def clean():
    bars, _ = generate_market(3, "2020-01-02", "2022-03-31", seed=11)
    panel = to_panel(bars)
    panel = {f: frame.iloc[:SESSIONS] for f, frame in panel.items()}
    return panel, dict(_generate(DEFS, panel, OPTIONS))


damage = st.fixed_dictionaries({
    "symbol": st.integers(0, 2),
    "start": st.integers(FIRST_DAMAGE, LAST_DAMAGE),
    "length": st.integers(1, 6),
    "kind": st.sampled_from(["inf", "-inf", "nan", "zero volume"]),
    "fields": st.sets(st.sampled_from(FIELDS), min_size=1, max_size=5),
})


@settings(max_examples=10, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(damages=st.lists(damage, min_size=1, max_size=3))
def test_no_non_finite_value_outlives_its_window(clean, damages):
    panel, reference = clean
    broken = {f: frame.copy() for f, frame in panel.items()}
    last = 0
    for d in damages:
        rows = slice(d["start"], d["start"] + d["length"])
        last = max(last, d["start"] + d["length"] - 1)
        if d["kind"] == "zero volume":
            broken["volume"].iloc[rows, d["symbol"]] = 0.0
            continue
        value = {"inf": np.inf, "-inf": -np.inf, "nan": np.nan}[d["kind"]]
        for field in d["fields"]:
            broken[field].iloc[rows, d["symbol"]] = value
    checked = 0
    for name, frame in _generate(DEFS, broken, OPTIONS):
        window = next(f.window for f in DEFS if f.name == name)
        after = last + window + SLACK
        if after >= SESSIONS:
            continue
        want = np.isfinite(reference[name].to_numpy(dtype="float64")[after:])
        got = np.isfinite(frame.to_numpy(dtype="float64")[after:])
        lost = want & ~got
        assert not lost.any(), (
            f"{name}: non-finite {int(lost.sum())} time(s) more than its window "
            f"({window}) after damage ending at row {last}: {damages}")
        checked += 1
    assert checked >= len(DEFS) - 1, checked  # all but, at the latest damage, GARCH


def test_the_damage_really_reaches_the_kernels(clean):
    """The panel is not cleaned on the way in (an infinite close shows in a raw ratio), and
    no family cleans the caller's panel in place for the features after it."""
    panel, _ = clean
    broken = {f: frame.copy() for f, frame in panel.items()}
    broken["close"].iloc[300, 0] = np.inf
    got = dict(_generate(get(["OPEN0", "ret_1", "garch_vol"]), broken, OPTIONS))
    assert np.isinf(got["ret_1"].iloc[300, 0]) and np.isnan(got["OPEN0"].iloc[300, 0])
    assert np.isinf(broken["close"].iloc[300, 0])
    assert np.isfinite(got["garch_vol"].iloc[302:, 0]).all()  # the filter resumes
