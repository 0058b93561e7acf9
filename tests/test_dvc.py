"""`dvc repro` and `dvc exp run -S` on a fresh copy of the repository."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, make_project

pytestmark = pytest.mark.slow


def sh(cmd: list[str], cwd: Path) -> str:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{' '.join(cmd)}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


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

    sh(["dvc", "exp", "run", "-S", "tuning.n_trials=2"], work)
    trained = json.loads((work / "metrics" / "train.json").read_text())
    # Same data, same Optuna studies: the DSR counts, per member objective, the 3 earlier
    # trials and the 2 new ones, and both ensembles evaluated.
    objectives = len(yaml.safe_load((work / "params.yaml").read_text())["model"]["objectives"])
    assert trained["oos"]["n_trials"] == objectives * 5 + 2
    assert "tuning.n_trials" in sh(["dvc", "exp", "show", "--no-pager", "--csv"], work)
