"""The sets chosen in params reach the feature table, the Feast schema and training."""

from alphaline.features.definitions import feature_names
from alphaline.features.store import online_view_name, view_name
from alphaline.pipelines import featurize, ingest
from alphaline.pipelines.catalog import Catalog
from tests.conftest import make_project


def test_selected_sets_flow_through_feast_to_the_training_set(tmp_path):
    sets = ["core", "technical", "liquidity"]
    project = make_project(tmp_path / "p", features__sets=sets,
                           features__cross_section={"method": "rank", "winsorize": 0.01,
                                                    "neutralize": ["market"]})
    ingest.ingest_history(project)
    ingest.validate_history(project)
    tables = featurize.build(ingest.load_validated(project), project.params.features)
    featurize.write(project, tables)
    names = feature_names(sets)
    assert list(tables.features.columns) == ["symbol", "date", *names]
    # rank, then market-neutral: every date's values are centred on zero
    day = tables.features[tables.features["date"] == tables.features["date"].max()]
    assert abs(day["ret_5"].mean()) < 1e-6 and day["ret_5"].abs().max() <= 0.5
    store = featurize.open_feature_store(project)
    # per selected set an offline view of its features and an online view of its packed
    # vector; no view for the others
    served = [f.name for s in sets for f in store.get_feature_view(view_name(s)).features]
    assert served == names
    assert {v.name for v in store.list_feature_views()} == \
        {view_name(s) for s in sets} | {online_view_name(s) for s in sets}
    ts = Catalog(project).training_set(store)
    assert ts.features == names and len(ts.X) > 1000
