"""A real Feast repo in a temporary folder: apply, point-in-time join, materialize, online."""

import numpy as np
import pandas as pd
import pytest

from alphaline.features import store as feast_store
from alphaline.features.compute import compute_features
from alphaline.features.definitions import feature_names
from alphaline.pipelines.synthetic import generate_market


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    root = tmp_path_factory.mktemp("feast")
    bars, _ = generate_market(5, "2023-01-03", "2023-06-30", seed=6)
    feats = compute_features(bars)
    table = root / "features.parquet"
    feast_store.to_feast_table(feats, "XNYS").to_parquet(table, index=False)
    store = feast_store.open_store(root / "repo", table, feature_names())
    return store, feats, root


def test_apply_registers_the_registry_schema(repo):
    store, _, root = repo
    view = store.get_feature_view(feast_store.VIEW)
    assert [f.name for f in view.features] == feature_names()
    assert (root / "repo" / "feature_store.yaml").is_file()
    assert store.get_feature_service(feast_store.SERVICE).name == feast_store.SERVICE


def test_rows_are_stamped_at_the_session_close():
    stamps = feast_store.session_close(pd.Series(pd.to_datetime(["2023-07-03", "2023-07-05"])),
                                       "XNYS")
    assert str(stamps.iloc[0]) == "2023-07-03 17:00:00+00:00"  # early close before July 4th
    assert str(stamps.iloc[1]) == "2023-07-05 20:00:00+00:00"
    with pytest.raises(ValueError, match="not a XNYS session"):
        feast_store.session_close(pd.Series(pd.to_datetime(["2023-07-04"])), "XNYS")


def test_historical_join_is_point_in_time(repo):
    store, feats, _ = repo
    entities = feats[["symbol", "date"]].iloc[::7].reset_index(drop=True)
    out = feast_store.historical(store, entities, ["ret_5", "vol_20"], "XNYS")
    expected = entities.merge(feats, on=["symbol", "date"])
    np.testing.assert_allclose(out["ret_5"], expected["ret_5"], equal_nan=True)
    # A decision taken before a day's close sees the previous session's features.
    sym = feats[feats["symbol"] == "SYN002"].reset_index(drop=True)
    entity_df = pd.DataFrame({
        "symbol": ["SYN002"],
        feast_store.TIMESTAMP: [feast_store.session_close(sym["date"].iloc[[40]], "XNYS").iloc[0]
                                - pd.Timedelta(hours=1)],
    })
    seen = store.get_historical_features(entity_df=entity_df,
                                         features=[f"{feast_store.VIEW}:ret_5"]).to_df()
    assert seen["ret_5"].iloc[0] == pytest.approx(sym["ret_5"].iloc[39])


def test_materialize_then_online_matches_the_table(repo):
    store, feats, _ = repo
    day = pd.Timestamp("2023-06-30")
    feast_store.materialize_day(store, day, "XNYS")
    online = feast_store.online_vectors(store, sorted(feats["symbol"].unique()), feature_names())
    offline = feats[feats["date"] == day].sort_values("symbol").reset_index(drop=True)
    online = online.sort_values("symbol").reset_index(drop=True)
    np.testing.assert_allclose(online[feature_names()].to_numpy(dtype=float),
                               offline[feature_names()].to_numpy(dtype=float), rtol=1e-12)


def test_chunked_historical_join_equals_one_join(repo):
    store, feats, _ = repo
    entities = feats[["symbol", "date"]]
    whole = feast_store.historical(store, entities, ["ret_5", "vol_20"],
                                   "XNYS")
    chunked = feast_store.historical(store, entities, ["ret_5", "vol_20"], "XNYS",
                                     max_cells=500)  # many small date ranges
    pd.testing.assert_frame_equal(whole, chunked)
    assert len(chunked) == len(entities)
