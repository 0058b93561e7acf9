from alphaline.features.definitions import FEATURES
from alphaline.flows.cli import EXIT_MISSING, app
from typer.testing import CliRunner

runner = CliRunner()


def test_help_lists_every_step_and_flow():
    out = runner.invoke(app, ["--help"]).output
    for name in ("ingest", "validate", "featurize", "train", "evaluate", "retrain", "trade",
                 "drift", "serve", "deploy", "demo", "halt", "resume", "model"):
        assert name in out


def test_features_markdown_lists_the_registry():
    out = runner.invoke(app, ["features", "--markdown"]).output
    rows = [line for line in out.splitlines() if line.startswith("| ") and "`" in line]
    assert all(line.replace("\\|", "").count("|") == 6 for line in rows)  # pipes escaped
    assert len(rows) == len(FEATURES)
    only = runner.invoke(app, ["features", "--markdown", "--set", "alpha158"]).output
    assert sum(1 for line in only.splitlines() if line.startswith("| alpha158 |")) == 158
    assert runner.invoke(app, ["features", "--set", "tarot"]).exit_code == 2


def test_missing_prerequisite_exits_4(project):
    result = runner.invoke(app, ["featurize", "--root", str(project.root)])
    assert result.exit_code == EXIT_MISSING
    assert "alphaline ingest" in result.output


def test_halt_and_resume_switch_the_ledger(project):
    from alphaline.trading.ledger import Ledger

    assert runner.invoke(app, ["halt", "--reason", "test", "--root", str(project.root)]
                         ).exit_code == 0
    assert Ledger(project.ledger_url).trading_state() == "HALTED"
    assert runner.invoke(app, ["resume", "--root", str(project.root)]).exit_code == 0
    assert Ledger(project.ledger_url).trading_state() == "ACTIVE"
