"""dvc.yaml is generated from the code; `dvc repro` and `dvc exp run -S` on a fresh copy."""

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from alphaline import stages
from tests.conftest import REPO, make_project


def sh(cmd: list[str], cwd: Path) -> str:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{' '.join(cmd)}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def test_dvc_yaml_is_generated():
    generated = stages.render(REPO)
    current = (REPO / "dvc.yaml").read_text()
    assert current == generated, (
        "dvc.yaml differs from what the code implies (an import or a params read changed): "
        f"run `make dvc-yaml` and commit it\n{stages.diff(current, generated)}")


def test_generated_dvc_yaml_is_a_dag_of_the_cli_steps():
    spec = yaml.safe_load(stages.render(REPO))
    assert list(spec["stages"]) == ["ingest", "validate", "featurize", "train", "evaluate"]
    evaluate = spec["stages"]["evaluate"]
    assert evaluate["cmd"] == "alphaline evaluate"
    for dep in ("data/validated/bars.parquet", "data/features/features.parquet",
                "data/features/labels.parquet", "data/model/oos.parquet", "metrics/train.json",
                "pipelines/evaluate.py", "pipelines/train.py", "alphaline/config.py"):
        assert dep in evaluate["deps"]
    params = set(evaluate["params"])
    assert {"gate", "broker"} <= params
    assert params & {"portfolio", "portfolio.quantile"}
    assert params & {"features", "features.label_horizon"}
    for stage in spec["stages"].values():
        code = [d for d in stage["deps"] if d.endswith(".py")]
        assert code == sorted(code) and all((REPO / d).is_file() for d in code)
        # a section read whole leaves none of its keys
        whole = {p for p in stage.get("params", []) if "." not in p}
        assert not [p for p in stage.get("params", []) if p.split(".")[0] in whole and "." in p]
    assert "features" in spec["stages"]["featurize"]["params"]
    assert spec["plots"][0] == {"plots/oos_long_short.csv": {
        "x": "date", "y": "challenger",
        "title": "Walk-forward out-of-sample cumulative long-short return (challenger)"}}


class _CV(BaseModel):
    embargo_days: int
    n_splits: int


class _CrossSection(BaseModel):
    method: str


class _Features(BaseModel):
    parallel: int
    label_horizon: int
    cross_section: _CrossSection


class _Params(BaseModel):
    features: _Features
    cv: _CV
    gate: int


def test_scanner_follows_imports_and_params_aliases(tmp_path):
    files = {
        "pkg/__init__.py": "",
        "pkg/entry.py": (
            "from pkg.sub import helper\n"
            "import os\n\n"
            "def run(project):\n"
            "    fp = project.params.features\n"
            "    other = project.name.params\n"
            "    return fp.parallel, other, helper.f(project.params)\n\n"
            "def later():\n"
            "    from pkg.sub.lazy import thing\n"
            "    return thing\n"),
        "sub/__init__.py": "",
        "sub/helper.py": (
            "from pkg.sub._features import _Features\n\n"
            "def f(p):\n"
            "    return p.cv.embargo_days\n\n"
            "def g(params: _Features):\n"
            "    cs = params.cross_section\n"
            "    return cs.method\n"),
        "sub/_features.py": "",
        "sub/lazy.py": "from . import leaf\nthing = 1\n",
        "sub/leaf.py": "",
        "sub/unused.py": "import pkg.entry\nx = params.gate\n",
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    scanner = stages.Scanner(tmp_path, {"pkg": "pkg", "pkg.sub": "sub"}, _Params)
    found = scanner.scan(["pkg.entry"])
    assert found.files == ["pkg/__init__.py", "pkg/entry.py", "sub/__init__.py",
                           "sub/_features.py", "sub/helper.py", "sub/lazy.py", "sub/leaf.py"]
    # `fp.parallel` through the alias; `params: _Features` maps the annotated argument to its
    # section; gate is read only in a module nobody imports
    assert found.params == ["cv.embargo_days", "features.cross_section", "features.parallel"]
    # a method of a section (not a field) reads all of it
    scan = stages.ParamsScanner(_Params).scan(
        ast.parse("def f(p):\n    return p.cv.model_dump(), p.features.nope").body)
    assert scan == {("cv",), ("features",)}
    assert stages.collapse([("cv",), ("cv", "n_splits"), ("gate",)]) == ["cv", "gate"]
    assert stages.collapse([("cv", "n_splits"), ("cv", "embargo_days")], _Params) == ["cv"]


def test_check_mode_reports_drift(tmp_path, capsys):
    root = tmp_path / "repo"
    root.mkdir()
    for rel in ("pyproject.toml", "dvc.yaml"):
        shutil.copy(REPO / rel, root / rel)
    for folder in stages.package_dirs(REPO).values():
        shutil.copytree(REPO / folder, root / folder, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__"))
    assert stages.main(["--root", str(root)]) in (0, None)
    assert stages.main(["--root", str(root), "--check"]) == 0
    with (root / "pipelines" / "evaluate.py").open("a") as f:
        f.write("\n\ndef _uses(p):\n    return p.drift.lookback_days\n")
    assert stages.main(["--root", str(root), "--check"]) == 1
    out = capsys.readouterr()
    assert "+      - drift.lookback_days" in out.out and "make dvc-yaml" in out.err


@pytest.mark.slow
def test_repro_then_experiment(tmp_path):
    work = tmp_path / "repo"
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True,
                             check=True).stdout.split()
    for rel in [*tracked, "dvc.yaml", ".dvc/config", ".dvcignore"]:
        if (REPO / rel).is_file():
            (work / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, work / rel)
    small = make_project(tmp_path / "small").root / "params.yaml"
    shutil.copy(small, work / "params.yaml")
    sh(["git", "init", "-q"], work)
    sh(["git", "-c", "user.email=ci@alphaline", "-c", "user.name=ci", "add", "-A"], work)
    sh(["git", "-c", "user.email=ci@alphaline", "-c", "user.name=ci", "commit", "-qm", "x"],
       work)

    sh(["dvc", "repro"], work)
    lock = yaml.safe_load((work / "dvc.lock").read_text())
    assert set(lock["stages"]) == {"ingest", "validate", "featurize", "train", "evaluate"}
    evaluation = json.loads((work / "metrics" / "evaluate.json").read_text())
    assert evaluation["promoted"] is True
    assert (work / "plots" / "oos_long_short.csv").is_file()
    assert "up to date" in sh(["dvc", "status"], work).lower()

    # A module only evaluate imports: touching it (in the copy) changes evaluate alone.
    scans = stages.stage_scans(work)
    earlier = {f for name, scan in scans.items() if name != "evaluate" for f in scan.files}
    only_evaluate = sorted(set(scans["evaluate"].files) - earlier)
    assert only_evaluate, "every module evaluate imports is imported by an earlier stage"
    touched = work / ("models/gate.py" if "models/gate.py" in only_evaluate
                      else only_evaluate[0])
    original = touched.read_text()
    touched.write_text(original + "# touched\n")
    status = sh(["dvc", "status"], work)
    assert "evaluate:" in status and "ingest:" not in status, status
    assert touched.relative_to(work).as_posix() in status
    touched.write_text(original)
    assert "up to date" in sh(["dvc", "status"], work).lower()

    sh(["dvc", "exp", "run", "-S", "tuning.n_trials=2"], work)
    trained = json.loads((work / "metrics" / "train.json").read_text())
    # Same data, same Optuna studies: the DSR counts, per member objective, the 3 earlier
    # trials and the 2 new ones, and both ensembles evaluated.
    objectives = len(yaml.safe_load((work / "params.yaml").read_text())["model"]["objectives"])
    assert trained["oos"]["n_trials"] == objectives * 5 + 2
    assert "tuning.n_trials" in sh(["dvc", "exp", "show", "--no-pager", "--csv"], work)
