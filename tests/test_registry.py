"""What the retrain flow leaves in MLflow and Optuna, and the gate on a noise market."""

import json
import math

import optuna

from alphaline.flows.retrain import retrain
from alphaline.models.gate import GateDecision
from alphaline.models.registry import CHALLENGER, CHAMPION, Registry
from tests.conftest import make_project


def test_champion_is_registered_with_its_evidence(trained_project):
    p = trained_project.params
    registry = Registry.for_project(trained_project)
    client = registry.client
    version = registry.alias_version(p.model.name, CHAMPION)
    assert version == registry.alias_version(p.model.name, CHALLENGER)
    mv = client.get_model_version(p.model.name, version)
    assert mv.tags["gate.decision"] == "promote"
    assert "DSR" in mv.tags["gate.reasons"] and "rank IC" in mv.tags["gate.reasons"]
    run = client.get_run(mv.run_id)
    assert len(run.data.tags["dataset_fingerprint"]) == 64
    assert run.data.metrics["oos_deflated_sharpe"] >= p.gate.min_deflated_sharpe
    # every trial of every member's study, plus the ensemble's own trial
    member_trials = p.tuning.n_trials * len(p.model.objectives)
    assert run.data.metrics["oos_n_trials"] == member_trials + 1
    stack = {k: v for k, v in run.data.metrics.items() if k.startswith("stack_weight_")}
    assert len(stack) == len(p.model.objectives) * len(p.model.seeds)
    assert abs(sum(stack.values()) - 1) < 1e-9 and min(stack.values()) >= 0
    artifacts = {a.path for a in client.list_artifacts(mv.run_id)}
    assert {"shap_importance.png", "features.json", "reference.json", "recipe.json",
            "ensemble_diversity.json", "fold_metrics.json", "fold_metrics.md",
            "feature_validation.json", "feature_validation.md"} <= artifacts
    folds = registry.run_artifact(p.model.name, version, "fold_metrics.json")
    assert len(folds) == p.cv.n_splits
    assert {"ic", "rank_ic", "icir", "sharpe_net", "turnover", "hit_rate"} <= set(folds[0])
    model, loaded_version, features = registry.load_alias(p.model.name)
    assert loaded_version == version and len(features) >= 20
    assert model.features == features and model.meta is not None
    evaluate = json.loads((trained_project.metrics_dir / "evaluate.json").read_text())
    assert evaluate["promoted"] and evaluate["champion_after"] == version
    n, k = p.cv.cpcv_groups, p.cv.cpcv_test_groups
    assert evaluate["cpcv"]["splits"] == math.comb(n, k)
    assert len(evaluate["paths"]) == math.comb(n - 1, k - 1)
    studies = optuna.get_all_study_summaries(trained_project.optuna_url)
    assert len(studies) == len(p.model.objectives) + 1
    assert sum(s.n_trials for s in studies) == member_trials + 1


def test_gate_refuses_a_model_of_pure_noise(tmp_path, prefect_harness):
    project = make_project(tmp_path / "noise", data__synthetic__mode="noise")
    out = retrain(root=str(project.root), as_of=project.params.data.end, reason="test")
    assert not out["promoted"]
    registry = Registry.for_project(project)
    assert registry.alias_version(project.params.model.name, CHAMPION) is None
    tags = registry.version_tags(project.params.model.name, out["version"])
    assert tags["gate.decision"] == "reject"


def test_model_status_shows_champion_and_reasons(trained_project):
    from typer.testing import CliRunner

    from alphaline.flows.cli import app

    result = CliRunner().invoke(app, ["model", "status", "--root", str(trained_project.root)])
    assert result.exit_code == 0, result.output
    assert "champion: alphaline v1 — promote" in result.output
    assert "DSR" in result.output


def test_rollback_restores_the_previous_champion(trained_project, tmp_path):
    import shutil

    from typer.testing import CliRunner

    from alphaline.flows.cli import EXIT_MISSING, app
    from alphaline.project import Project

    project = Project.load(shutil.copytree(trained_project.root, tmp_path / "p"))
    runner = CliRunner()
    args = ["model", "rollback", "--reason", "bad fills", "--root", str(project.root)]
    assert runner.invoke(app, args).exit_code == EXIT_MISSING  # v1 has no predecessor
    out = retrain(root=str(project.root), as_of=project.params.data.end, reason="test",
                  refresh_data=False)
    # the same recipe on the same data ties with the champion, and a tie keeps the champion
    assert not out["promoted"] and out["version"] == "2"
    assert any("the champion stays" in r for r in out["reasons"]), out["reasons"]
    registry = Registry.for_project(project)
    registry.record_decision(project.params.model.name, "2",
                             GateDecision(True, ["promoted by hand for the rollback test"]),
                             {})
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "v2 → v1" in result.output
    registry = Registry.for_project(project)
    assert registry.alias_version(project.params.model.name, CHAMPION) == "1"
    tags = registry.version_tags(project.params.model.name, "2")
    assert "bad fills" in tags["rollback.from"]


def test_registry_keeps_the_newest_versions_and_the_rollback_target(tmp_path):
    import mlflow

    registry = Registry(f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "artifacts", "keep")
    client = registry.client
    client.create_registered_model("keep")
    with registry.fluent() as exp_id, mlflow.start_run(experiment_id=exp_id) as run:
        mlflow.log_dict({"x": 1}, "model/x.json")
    for _ in range(6):
        client.create_model_version("keep", f"{run.info.artifact_uri}/model", run.info.run_id)
    client.set_model_version_tag("keep", "1", "gate.decision", "promote")
    client.set_model_version_tag("keep", "3", "gate.decision", "promote")
    client.set_registered_model_alias("keep", CHAMPION, "3")
    deleted = registry.prune_versions("keep", keep=2)
    left = sorted(int(v.version) for v in client.search_model_versions("name='keep'"))
    # newest two (5, 6), the champion (3), and v1: the version a rollback would restore
    assert left == [1, 3, 5, 6] and sorted(deleted) == ["2", "4"]


def test_the_registry_leaves_mlflows_global_uri_alone(tmp_path):
    import mlflow

    before = mlflow.get_tracking_uri()
    registry = Registry(f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "artifacts", "x")
    with registry.fluent():
        assert mlflow.get_tracking_uri() == registry.tracking_uri
    assert mlflow.get_tracking_uri() == before
    assert registry.alias_version("nothing", CHAMPION) is None
