"""One run's console and log file: third-party noise to the file, each warning once, the
project's own lines on the console, progress bars with one log line per finished unit."""

from __future__ import annotations

import importlib.util
import io
import logging
import warnings
from pathlib import Path
from types import ModuleType

import optuna
import pytest
from rich.console import Console
from typer.testing import CliRunner

from alphaline import console as run_console
from alphaline.console import Progress, run_log, say_once
from alphaline.models.tuning import TrialProgress

LIBRARY = '''
import warnings


def old_api():
    warnings.warn("old_api() is deprecated, use new_api()", DeprecationWarning)


def fit():
    # as estimators do around their own code: the filters change, so Python's own
    # once-per-location registry is reset and the same warning comes back on every call
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
    warnings.warn("fit: fewer samples than leaves", UserWarning)
'''


def load_module(tmp_path: Path, name: str, source: str) -> ModuleType:
    """A real module named ``name`` (a library, or a module of this project)."""
    path = tmp_path / f"{name.replace('.', '_')}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def library(tmp_path: Path) -> ModuleType:
    return load_module(tmp_path, "noisylib", LIBRARY)


@pytest.fixture
def screen() -> io.StringIO:
    return io.StringIO()


def run(tmp_path: Path, screen: io.StringIO, command: str = "cmd"):
    return run_log(command, tmp_path / "logs",
                   rich_console=Console(file=screen, width=200, color_system=None))


def test_a_third_party_deprecation_goes_to_the_file_not_the_console(tmp_path, library, screen):
    from sqlalchemy.util import warn_deprecated

    with run(tmp_path, screen) as r:
        library.old_api()
        warn_deprecated("the legacy_thing option is deprecated", "2.0")  # SQLAlchemy's own
    text = r.path.read_text()
    assert "DeprecationWarning: old_api() is deprecated" in text
    assert "SADeprecationWarning: the legacy_thing option is deprecated" in text
    assert "deprecated" not in screen.getvalue()
    assert r.path == tmp_path / "logs" / "cmd.log"


def test_the_same_warning_five_times_is_said_once(tmp_path, library, screen):
    with warnings.catch_warnings(record=True) as bare:  # without a run: five times
        warnings.simplefilter("default")
        for _ in range(5):
            library.fit()
    assert len(bare) == 5
    with run(tmp_path, screen) as r:
        for _ in range(5):
            library.fit()
            library.old_api()
    assert screen.getvalue().count("fewer samples than leaves") == 1
    text = r.path.read_text()
    assert "fewer samples than leaves (" in text  # said once, with where it came from
    assert "fewer samples than leaves" in text and "raised 5 times this run" in text
    assert text.count("old_api() is deprecated") == 2  # once, then its count at the end
    assert "old_api() is deprecated, use new_api() — raised 5 times" not in screen.getvalue()


def test_the_projects_own_warnings_reach_the_console(tmp_path, screen):
    ours = load_module(tmp_path, "alphaline.console_test_module",
                       'import warnings\n\n\ndef retire():\n'
                       '    warnings.warn("param x is deprecated: use y", DeprecationWarning)\n')
    with run(tmp_path, screen) as r:
        logging.getLogger("alphaline.pipelines.train").warning("suspected leak in f3")
        logging.getLogger("alphaline.pipelines.train").info("registered v3")
        logging.getLogger("some.library").info("chatty library detail")
        ours.retire()
        ours.retire()
    shown = screen.getvalue()
    assert "suspected leak in f3" in shown and "registered v3" in shown
    assert shown.count("param x is deprecated: use y") == 1
    assert "chatty library detail" not in shown
    assert "chatty library detail" in r.path.read_text()


def test_the_run_gives_back_what_it_changed(tmp_path, library, screen):
    root = logging.getLogger()
    handlers, level, hook = root.handlers[:], root.level, warnings.showwarning
    filters = warnings.filters[:]
    with run(tmp_path, screen):
        assert warnings.showwarning is not hook
    assert root.handlers == handlers and root.level == level
    assert warnings.showwarning is hook and warnings.filters == filters
    assert run_console.current() is None


def test_say_once_counts_the_repeats(tmp_path, screen, caplog):
    log = logging.getLogger("alphaline.models.ensemble")
    with run(tmp_path, screen):
        for rho in (0.97, 0.98, 0.99):
            say_once(log, logging.INFO, ("redundant", "a", "b"),
                     "members %s and %s are redundant: %.2f", "a", "b", rho)
    shown = screen.getvalue()
    assert shown.count("members a and b are redundant: 0.97") == 2  # first, then the count
    assert "said 3 times this run" in shown and "0.98" not in shown
    with caplog.at_level(logging.INFO, logger="alphaline.models.ensemble"):  # outside a run
        for _ in range(2):
            say_once(log, logging.INFO, "k", "a library call says it every time")
    assert caplog.text.count("a library call says it every time") == 2


def test_a_flow_inside_a_command_joins_its_run(tmp_path, screen):
    with run(tmp_path, screen, "demo") as outer:
        with run_log("retrain", tmp_path / "other") as inner:
            logging.getLogger("alphaline.flows").info("inside the flow")
        assert inner is outer and run_console.current() is outer
    assert "inside the flow" in (tmp_path / "logs" / "demo.log").read_text()
    assert not (tmp_path / "other").exists()


def test_the_trial_bar_advances_per_trial_and_reports_the_total(tmp_path, screen):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    bar_text = io.StringIO()
    seen = []
    with run(tmp_path, screen) as r, TrialProgress("tune demo", 4, disable=False,
                                                   file=bar_text) as progress:
        def objective(trial: optuna.Trial) -> float:
            seen.append(progress.progress.n)  # trials finished before this one
            return (trial.suggest_float("x", -1.0, 1.0) - 0.3) ** 2 * -1

        study = optuna.create_study(direction="maximize",
                                    sampler=optuna.samplers.TPESampler(seed=0))
        study.optimize(objective, n_trials=4, callbacks=[progress])
    assert seen == [0, 1, 2, 3]
    assert progress.progress.n == progress.progress.total == 4
    assert "4/4" in bar_text.getvalue() and "best" in bar_text.getvalue()
    lines = [line for line in r.path.read_text().splitlines() if "tune demo: trial" in line]
    assert len(lines) == 4 and "trial 4/4 done" in lines[-1]
    assert "tune demo" not in screen.getvalue()  # the bar shows it, not log lines


def test_bars_hide_under_pytest_and_the_file_still_gets_each_unit(tmp_path, screen):
    with run(tmp_path, screen) as r:
        items = list(run_console.track(range(3), "CPCV challenger", unit="split"))
        bar = Progress("walk-forward", 2, "fold")
        assert bar._bar.disable
        bar.close()
    assert items == [0, 1, 2]
    text = r.path.read_text()
    assert "CPCV challenger: split 3/3 done" in text and "left" in text


def test_a_cli_command_writes_its_log_file(project):
    from alphaline.flows.cli import app

    out = CliRunner().invoke(app, ["params", "--root", str(project.root)])
    assert out.exit_code == 0, out.output
    log = project.state_dir / "logs" / "params.log"
    assert "=== alphaline params" in log.read_text()
    assert run_console.current() is None
