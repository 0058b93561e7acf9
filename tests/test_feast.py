"""A real Feast repo in a temporary folder: apply, point-in-time join, materialize, online."""

import numpy as np
import pandas as pd
import pytest
from feast import FeatureStore
from feast.repo_config import RepoConfig

from alphaline.features import store as feast_store
from alphaline.features.compute import compute_features
from alphaline.features.definitions import SETS, feature_names
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
    view = store.get_feature_view(feast_store.view_name("core"))
    assert [f.name for f in view.features] == feature_names()
    assert (root / "repo" / "feature_store.yaml").is_file()
    assert store.get_feature_service(feast_store.SERVICE).name == feast_store.SERVICE


def test_one_view_per_set_and_requests_name_only_their_sets(tmp_path):
    table = tmp_path / "features.parquet"
    names = feature_names(SETS)
    pd.DataFrame(columns=["symbol", feast_store.TIMESTAMP, *names]).to_parquet(table)
    store = feast_store.open_store(tmp_path / "repo", table, names)
    views = {v.name: [f.name for f in v.features] for v in store.list_feature_views()}
    assert views == {
        **{feast_store.view_name(s): feature_names([s]) for s in SETS},
        **{feast_store.online_view_name(s): [feast_store.vector_name(s)] for s in SETS}}
    assert feast_store.online_columns(store) == {s: feature_names([s]) for s in SETS}
    refs = feast_store.feature_refs(["ret_5", "KMID", "ret_1"])
    assert refs == ["core:ret_5", "alpha158:KMID", "core:ret_1"]
    # Narrowing the sets drops the views no longer selected (materialize would write them).
    store = feast_store.open_store(tmp_path / "repo", table, feature_names(["core"]))
    assert sorted(v.name for v in store.list_feature_views()) == [
        feast_store.view_name("core"), feast_store.online_view_name("core")]


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
                                         features=feast_store.feature_refs(["ret_5"])).to_df()
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
    # A subset in any order, across the packed vector; an unknown symbol reads as missing.
    names = ["vol_20", "ret_1", "rsi_14"]
    some = feast_store.online_vectors(store, ["SYN003", "NOPE", "SYN001"], names)
    assert list(some.columns) == ["symbol", *names]
    assert some["symbol"].tolist() == ["SYN003", "NOPE", "SYN001"]
    assert some.iloc[1][names].isna().all()
    want = offline.set_index("symbol").loc[["SYN003", "SYN001"], names].to_numpy(dtype=float)
    np.testing.assert_allclose(some.iloc[[0, 2]][names].to_numpy(dtype=float), want,
                               rtol=1e-12)
    # The serving read goes through the packed views only: no scalar view is online.
    assert not [v.name for v in store.list_feature_views() if v.online
                and v.name not in {feast_store.online_view_name(s) for s in SETS}]
    with pytest.raises(ValueError, match="has no rows for 2023-07-03"):
        feast_store.materialize_day(store, pd.Timestamp("2023-07-03"), "XNYS")
    with pytest.raises(KeyError, match="serves no"):
        feast_store.online_vectors(store, ["SYN001"], ["KMID"])  # alpha158 not served here


def test_chunked_historical_join_equals_one_join(repo):
    store, feats, _ = repo
    entities = feats[["symbol", "date"]]
    whole = feast_store.historical(store, entities, ["ret_5", "vol_20"],
                                   "XNYS")
    chunked = feast_store.historical(store, entities, ["ret_5", "vol_20"], "XNYS",
                                     max_cells=500)  # many small date ranges
    pd.testing.assert_frame_equal(whole, chunked)
    assert len(chunked) == len(entities)


def test_asof_store_returns_what_the_stock_duckdb_join_returns(repo, tmp_path):
    """Same rows and values as Feast's own DuckDB join: gaps longer than the TTL, a symbol
    with no rows, duplicate entity rows, decisions between closes, full feature names."""
    _, feats, _ = repo
    table = tmp_path / "gappy.parquet"
    gappy = feast_store.to_feast_table(feats, "XNYS")
    gappy = gappy[~((gappy["symbol"] == "SYN001") & gappy["date"].between("2023-03-01",
                                                                          "2023-03-31"))]
    gappy.to_parquet(table, index=False)
    stamps = pd.date_range("2023-02-20", "2023-04-20", freq="17h", tz="UTC")
    entity_df = pd.DataFrame({"symbol": np.repeat(["SYN001", "SYN003", "NOPE"], len(stamps)),
                              feast_store.TIMESTAMP: np.tile(stamps, 3)})
    entity_df = pd.concat([entity_df, entity_df.iloc[:5]], ignore_index=True)
    entity_df["row"] = np.arange(len(entity_df))
    refs = feast_store.feature_refs(["ret_5", "vol_20", "rsi_14"])
    out = {}
    for kind in ("duckdb", feast_store.OFFLINE_STORE):
        repo_dir = tmp_path / kind.rsplit(".", 1)[-1]
        config = RepoConfig(**{**feast_store._config(repo_dir), "offline_store": {"type": kind}},
                            repo_path=str(repo_dir))
        store = FeatureStore(config=config)
        store.apply(feast_store.definitions(table, feature_names()))
        for full in (False, True):
            got = store.get_historical_features(entity_df=entity_df, features=refs,
                                                full_feature_names=full).to_df()
            out[kind, full] = got.sort_values("row", ignore_index=True)
    for full in (False, True):
        stock, asof = out["duckdb", full], out[feast_store.OFFLINE_STORE, full]
        assert list(asof.columns) == list(stock.columns)
        pd.testing.assert_frame_equal(asof, stock, check_dtype=False)
    values = out[feast_store.OFFLINE_STORE, False]
    assert values["ret_5"].notna().sum() > 0 and values["ret_5"].isna().sum() > len(stamps)
