from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from alphaline.config import ConfigError, load_params
from alphaline.flows.cli import EXIT_CONFIG, app

REPO = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, mutate) -> Path:
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    mutate(raw)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_repo_params_load():
    params = load_params(REPO / "params.yaml")
    assert params.data.source == "synthetic"
    assert params.risk.max_gross_exposure >= params.portfolio.gross_exposure


def test_unknown_key_names_its_path(tmp_path):
    path = write(tmp_path, lambda r: r["risk"].update(max_grss_exposure=1.0))
    with pytest.raises(ConfigError, match=r"risk\.max_grss_exposure: unknown key"):
        load_params(path)


def test_out_of_range_value_names_path_and_range(tmp_path):
    path = write(tmp_path, lambda r: r["risk"].update(max_gross_exposure=5.0))
    with pytest.raises(ConfigError) as err:
        load_params(path)
    msg = str(err.value)
    assert "risk.max_gross_exposure" in msg
    assert "≤ 3.0" in msg and "got 5.0" in msg


def test_wrong_type_names_path(tmp_path):
    path = write(tmp_path, lambda r: r["data"]["synthetic"].update(n_symbols="many"))
    with pytest.raises(ConfigError, match=r"data\.synthetic\.n_symbols.*'many'"):
        load_params(path)


def test_choice_lists_allowed_values(tmp_path):
    path = write(tmp_path, lambda r: r["data"].update(source="bloomberg"))
    with pytest.raises(ConfigError, match=r"data\.source.*'synthetic', 'files', 'yfinance'"):
        load_params(path)


def test_missing_section_fails(tmp_path):
    path = write(tmp_path, lambda r: r.pop("risk"))
    with pytest.raises(ConfigError, match=r"risk: Field required"):
        load_params(path)


def test_portfolio_cannot_exceed_risk_limits(tmp_path):
    def mutate(r):
        r["portfolio"]["gross_exposure"] = 2.0
        r["risk"]["max_gross_exposure"] = 1.5
    with pytest.raises(ConfigError, match=r"exceeds risk\.max_gross_exposure"):
        load_params(write(tmp_path, mutate))


def test_unknown_broker_is_not_accepted(tmp_path):
    path = write(tmp_path, lambda r: r["broker"].update(kind="alpaca"))
    with pytest.raises(ConfigError, match=r"broker\.kind"):
        load_params(path)


def test_cli_exits_2_with_the_key_path(tmp_path):
    write(tmp_path, lambda r: r["cv"].update(n_splits=1))
    result = CliRunner().invoke(app, ["params", "--root", str(tmp_path)])
    assert result.exit_code == EXIT_CONFIG
    assert "cv.n_splits" in result.output


def test_overrides_are_validated():
    params = load_params(REPO / "params.yaml")
    assert params.with_overrides({"tuning.n_trials": 3}).tuning.n_trials == 3
    with pytest.raises(ConfigError, match=r"tuning\.n_trials"):
        params.with_overrides({"tuning.n_trials": 0})
    with pytest.raises(ConfigError, match="unknown parameter"):
        params.with_overrides({"tuning.trials": 3})


def test_tft_quantiles_must_include_the_median():
    params = load_params(REPO / "params.yaml")
    with pytest.raises(ConfigError, match=r"model\.tft.*0\.5"):
        params.with_overrides({"model.tft.quantiles": [0.1, 0.9]})
