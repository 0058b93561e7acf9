"""The ``alphaline`` command line.

Exit codes: 0 success · 1 unexpected error · 2 bad parameters or usage · 3 data failed
validation (quarantined) · 4 a prerequisite is missing (no data yet, no champion) · 5 the broker
cannot be reached, or its account differs from the ledger beyond tolerance.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from alphaline import console as run_console
from alphaline.errors import (
    AlphalineError,
    ConfigError,
    DataRejected,
    MissingPrerequisite,
    SourceError,
)
from alphaline.project import Project
from alphaline.runtime import configure_environment
from alphaline.secrets import mask_url

EXIT_ERROR, EXIT_CONFIG, EXIT_INVALID_DATA, EXIT_MISSING = 1, 2, 3, 4

console = Console(stderr=True)
app = typer.Typer(help="alphaline: research-to-production ML pipeline for systematic trading.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
model_app = typer.Typer(help="Inspect the model registry.", no_args_is_help=True)
app.add_typer(model_app, name="model")
db_app = typer.Typer(help="The ledger's database schema (Alembic migrations).",
                     no_args_is_help=True)
app.add_typer(db_app, name="db")
risk_app = typer.Typer(help="The trading state (ACTIVE, REDUCING, HALTED) and kill switches.",
                       no_args_is_help=True)
app.add_typer(risk_app, name="risk")
broker_app = typer.Typer(help="The broker account (Interactive Brokers).", no_args_is_help=True)
app.add_typer(broker_app, name="broker")

RootOpt = Annotated[Path | None, typer.Option("--root", help="project folder (default: "
                                              "$ALPHALINE_HOME or the current folder)")]
DayOpt = Annotated[dt.datetime | None, typer.Option("--day", formats=["%Y-%m-%d"],
                                                    help="exchange day (default: today)")]


@app.callback()
def _entry() -> None:
    # Runs before every command and sub-command. Commands import Prefect, Feast, MLflow and
    # GX inside their bodies, so the environment is set before any of them is imported
    # (Prefect reads its settings at import time).
    configure_environment()


def _project(root: Path | None) -> Project:
    project = Project.load(root)
    project.ensure_dirs()
    run = run_console.current()
    if run is not None:  # the command's log file: state/logs/<command>.log
        run.attach_file(project.state_dir / "logs")
    return project


def _command_name(fn) -> str:
    """``train``, ``model status``: the command as typed, without the program's name."""
    import click

    ctx = click.get_current_context(silent=True)
    name = ctx.command_path.partition(" ")[2] if ctx is not None else ""
    return name or fn.__name__


_LABELS = {ConfigError: "parameters", DataRejected: "data rejected",
           MissingPrerequisite: "missing", SourceError: "source"}


def command(fn):
    """Report the project's own failures (``AlphalineError``) as a message and its exit code.

    Anything else is a bug: it propagates with its traceback (exit 1). The command runs as
    one run of :mod:`alphaline.console`: its console, its log file, its warnings said once.
    """
    from alphaline.pipelines.validate import ValidationFailed

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with run_console.run_log(_command_name(fn), rich_console=console):
            try:
                return fn(*args, **kwargs)
            except ValidationFailed as exc:
                console.print(f"[red]validation failed[/red] — batch quarantined in "
                              f"{exc.quarantine_dir}")
                for line in exc.report.summary().splitlines()[:40]:
                    console.print(f"  {line}")
                if exc.report.docs_url:
                    console.print(f"Data Docs: {exc.report.docs_url}")
                raise typer.Exit(exc.exit_code) from None
            except AlphalineError as exc:
                label = next((text for kind, text in _LABELS.items() if isinstance(exc, kind)),
                             "error")
                console.print(f"[red]{label}:[/red] {exc}")
                raise typer.Exit(exc.exit_code) from None
    return wrapper


# research DAG steps (dvc.yaml runs these)
@app.command()
@command
def ingest(root: RootOpt = None) -> None:
    """Fetch the research history [data.start, data.end] into data/raw."""
    from alphaline.pipelines.ingest import ingest_history

    project = _project(root)
    with console.status(f"fetching bars from {project.params.data.source}"):
        bars = ingest_history(project)
    console.print(f"{len(bars):,} bars, {bars['symbol'].nunique()} symbols → "
                  f"{project.raw_bars}")


@app.command()
@command
def validate(root: RootOpt = None) -> None:
    """Validate data/raw with Great Expectations; on success write data/validated."""
    from alphaline.pipelines.ingest import validate_history

    project = _project(root)
    with console.status("validating with Great Expectations"):
        report = validate_history(project)
    console.print(f"{report.rows:,} rows checked; those that passed → {project.validated_bars}")
    for line in report.warnings:
        console.print(f"[yellow]warning[/yellow] {line}")
    if report.quarantined:
        console.print(f"[yellow]{len(report.quarantined)} symbol(s) quarantined[/yellow] in "
                      f"{report.quarantine_dir} (validation.on_symbol_failure: "
                      f"{project.params.validation.on_symbol_failure}):")
        for symbol, reasons in report.quarantined.items():
            console.print(f"  {symbol}: {reasons[0]}")
    if report.docs_url:
        console.print(f"Data Docs: {report.docs_url}")


@app.command()
@command
def featurize(root: RootOpt = None) -> None:
    """Compute features and labels from data/validated; register them with Feast."""
    from alphaline.pipelines import featurize as fz
    from alphaline.pipelines.ingest import load_validated

    project = _project(root)
    with console.status("computing features"):
        tables = fz.build(load_validated(project), project.params.features)
        fz.write(project, tables)
    console.print(f"{len(tables.features):,} rows × {tables.features.shape[1] - 2} features "
                  f"→ {project.feature_table}")


@app.command()
@command
def train(root: RootOpt = None) -> None:
    """Tune and train on the Feast training set; register the model as challenger."""
    from alphaline.flows.parallel import trial_runner
    from alphaline.pipelines.train import run_train

    project = _project(root)
    # a bar per Optuna study, then the walk-forward folds' bar
    out = run_train(project, run_trials=trial_runner(project.params.tuning.parallel))
    _print_metrics(f"challenger v{out.version} (out of sample)", out.oos)


@app.command("train-tft")
@command
def train_tft(root: RootOpt = None) -> None:
    """Tune, train and gate the TFT (and the stack of the trees and the TFT with
    ``model.tft.stack``) after the trees' train stage; each may become the champion."""
    from alphaline.pipelines.train_tft import run_train_tft

    project = _project(root)
    results = run_train_tft(project)
    for r in results:
        verdict = "promoted to champion" if r.promoted else "not promoted"
        console.print(f"v{r.version}: {verdict}")
        for reason in r.reasons:
            console.print(f"  - {reason}")


@app.command()
@command
def evaluate(root: RootOpt = None) -> None:
    """Gate the challenger: absolute limits, then the champion on the same CPCV paths."""
    from alphaline.flows.parallel import fold_mapper
    from alphaline.pipelines.evaluate import run_evaluate

    project = _project(root)
    # a bar over the CPCV splits of each recipe
    decision = run_evaluate(project, map_folds=fold_mapper(project.params.cv.parallel))
    verdict = "[green]promoted to champion[/green]" if decision.promote \
        else "[yellow]not promoted[/yellow]"
    console.print(f"gate: {verdict}")
    for reason in decision.reasons:
        console.print(f"  • {reason}")


# flows
@app.command()
@command
def retrain(root: RootOpt = None,
            as_of: Annotated[dt.datetime | None, typer.Option(formats=["%Y-%m-%d"])] = None
            ) -> None:
    """Run the retrain flow (ingest → validate → features → tune → train → gate)."""
    from alphaline.flows.retrain import retrain as retrain_flow

    project = _project(root)
    out = retrain_flow(root=str(project.root), as_of=as_of.date() if as_of else None,
                       reason="manual")
    _print_metrics(f"v{out['version']} — {'promoted' if out['promoted'] else 'not promoted'}",
                   out["oos"])


@app.command()
@command
def backtest(
        start: Annotated[dt.datetime, typer.Option(formats=["%Y-%m-%d"],
                                                   help="first session")],
        end: Annotated[dt.datetime, typer.Option(formats=["%Y-%m-%d"], help="last session")],
        retrain: Annotated[str, typer.Option(
            help="none: the champion trades every day · monthly: its recipe is refitted at "
                 "each month's first session on the labels known by then")] = "none",
        name: Annotated[str | None, typer.Option(
            help="run folder under reports/backtest (default start_end_retrain); an "
                 "existing one resumes")] = None,
        root: RootOpt = None) -> None:
    """Replay the daily flow over history with costs; write the HTML report."""
    from alphaline.flows.backtest import backtest as backtest_flow
    from alphaline.pipelines.backtest import RETRAIN

    if retrain not in RETRAIN:  # before the flow starts: a usage error, not a failed run
        raise ConfigError(f"--retrain {retrain!r}: choose one of {', '.join(RETRAIN)}")
    if end < start:
        raise ConfigError(f"--end {end.date()} is before --start {start.date()}")
    project = _project(root)
    out = backtest_flow(start.date(), end.date(), root=str(project.root), retrain=retrain,
                        name=name)
    console.print(f"{out['sessions']} sessions, NAV {out['nav_start']:,.0f} → "
                  f"{out['nav_end']:,.0f}, {out['fills']} fills, models "
                  f"{', '.join(out['versions'])}")
    print(out["report"])


@app.command()
@command
def trade(root: RootOpt = None, day: DayOpt = None,
          force: Annotated[bool, typer.Option(
              "--force", help="run even before the session's close + settle delay")] = False
          ) -> None:
    """Run the daily trading flow for one exchange day (``broker.kind``), after its close."""
    from alphaline.flows.daily_trading import daily_trading

    project = _project(root)
    _confirm_live(project)
    out = daily_trading(day=day.date() if day else None, root=str(project.root), force=force)
    if out.get("skipped"):
        console.print(f"{out['day']}: {out['skipped']}")
        return
    console.print(f"{out['day']}: {len(out['orders_submitted'])} orders submitted, "
                  f"{len(out['orders_rejected'])} rejected, {out['fills']} fills, "
                  f"NAV {out['nav']:,.2f} — report {out['report']}")


def _confirm_live(project: Project) -> None:
    """``broker.ibkr.live: true`` asks a person at a terminal to type LIVE; the adapter
    also refuses a live account without ALPHALINE_IBKR_LIVE_CONFIRM=yes."""
    b = project.params.broker
    if b.kind != "ibkr" or not b.ibkr.live or not sys.stdin.isatty():
        return
    answer = typer.prompt("broker.ibkr.live is true: orders may spend real money. "
                          "Type LIVE to go on", default="", show_default=False)
    if answer.strip() != "LIVE":
        raise ConfigError("live trading not confirmed at the prompt: nothing was sent")


@broker_app.command("check")
@command
def broker_check(root: RootOpt = None, day: DayOpt = None) -> None:
    """Connect to IBKR (environment: README), show the account summary, positions, open
    orders and the reconciliation with the ledger; exit 5 when they differ beyond
    tolerance. Writes nothing."""
    from alphaline.trading.brokers.ibkr import Endpoint, IbkrBroker
    from alphaline.trading.costs import CostModel
    from alphaline.trading.ledger import Ledger

    project = _project(root)
    p = project.params
    broker = IbkrBroker(Ledger(project.ledger_url), CostModel.from_params(p.broker),
                        p.broker.ibkr, Endpoint.from_env())
    with broker:
        when = day.date() if day else dt.datetime.now(dt.UTC).date()
        rec = broker.check(when)
        summary = broker.account_summary()
        account = broker.account()
    print(f"IBKR {broker.endpoint.describe()}")
    for tag, value in summary.items():
        print(f"  {tag:<20} {value}")
    print(f"positions ({len(account.positions)})")
    for sym, qty in sorted(account.positions.items()):
        print(f"  {sym:<10} {qty:>14g}")
    print(f"open orders ({len(account.open_orders)})")
    for o in account.open_orders:
        print(f"  {o.order_ref or '(no orderRef)'}  {o.side} {o.quantity:g} {o.symbol}  "
              f"{o.status}, {o.filled:g} filled")
    print(rec.markdown())
    if not rec.ok:
        console.print(f"[red]reconciliation:[/red] {rec.summary()}")
        raise typer.Exit(5)


@app.command()
@command
def drift(root: RootOpt = None,
          as_of: Annotated[dt.datetime | None, typer.Option(formats=["%Y-%m-%d"])] = None,
          no_retrain: Annotated[bool, typer.Option(help="measure only")] = False) -> None:
    """Run the drift check; over the PSI threshold it starts retrain."""
    from alphaline.flows.drift_check import drift_check

    project = _project(root)
    out = drift_check(root=str(project.root), as_of=as_of.date() if as_of else None,
                      start_retrain=not no_retrain)
    console.print(f"max feature PSI {out['max_feature_psi']:.3f}, score PSI "
                  f"{out['score_psi'] if out['score_psi'] is None else round(out['score_psi'], 3)}"
                  f"; drifted: {out['drifted'] or 'none'}")


@app.command()
@command
def deploy(root: RootOpt = None) -> None:
    """Create or update the scheduled deployments in the Prefect API (without serving)."""
    from alphaline.flows.deployments import register

    ids = register(_project(root))
    console.print(f"{len(ids)} deployments registered")


@app.command()
@command
def serve(root: RootOpt = None) -> None:
    """Create the scheduled deployments and serve them until interrupted (see the Prefect UI)."""
    from alphaline.flows.deployments import serve_all

    serve_all(_project(root))


ReasonOpt = Annotated[str, typer.Option("--reason", help="why (kept in the state's history)")]


def _set_state(root: Path | None, state: str, reason: str) -> None:
    """Record ``state`` by the OS user; HALTED also cancels every working order."""
    from alphaline.trading.kill_switches import cancel_working
    from alphaline.trading.ledger import Ledger, upgrade
    from alphaline.trading.states import HALTED

    url = _project(root).ledger_url
    upgrade(url)
    ledger = Ledger(url)
    event = ledger.set_trading_state(state, reason)
    console.print(f"trading {state} — {reason} ({event.actor})")
    if state == HALTED:
        cancelled = cancel_working(ledger, f"trading HALTED by {event.actor}: {reason}")
        console.print(f"{len(cancelled)} working orders cancelled")


@risk_app.command("status")
@command
def risk_status(root: RootOpt = None,
                history: Annotated[int, typer.Option(help="state changes to show")] = 10
                ) -> None:
    """The trading state, why and since when, its recent history and kill-switch headroom."""
    from alphaline.trading.kill_switches import headroom
    from alphaline.trading.ledger import Ledger, upgrade

    project = _project(root)
    upgrade(project.ledger_url)
    ledger = Ledger(project.ledger_url)
    now = ledger.trading_state_event()
    if now is None:
        print("state    ACTIVE (no state change recorded)")
    else:
        print(f"state    {now.state}\nreason   {now.reason}\nby       {now.actor}\n"
              f"since    {now.at:%Y-%m-%d %H:%M:%S} UTC")
    events = ledger.risk_events(limit=history)
    if events:
        table = Table("at (UTC)", "day", "state", "by", "reason", title="history")
        for e in events:
            table.add_row(f"{e.at:%Y-%m-%d %H:%M:%S}", str(e.day or ""), e.state, e.actor,
                          e.reason)
        Console().print(table)
    nav = ledger.nav_history()
    if len(nav):
        table = Table("kill switch", "value", "fires at", "headroom", title="headroom")
        for h in headroom(nav, project.params.risk.kill_switches):
            table.add_row(h["rule"], f"{h['value']:.2%}", f"{h['limit']:.2%}",
                          f"{h['headroom']:+.2%}")
        Console().print(table)


@risk_app.command("halt")
@command
def risk_halt(reason: ReasonOpt, root: RootOpt = None) -> None:
    """HALTED: every new order is refused and working orders are cancelled."""
    _set_state(root, "HALTED", reason)


@risk_app.command("reduce")
@command
def risk_reduce(reason: ReasonOpt, root: RootOpt = None) -> None:
    """REDUCING: only orders that shrink a position pass."""
    _set_state(root, "REDUCING", reason)


@risk_app.command("resume")
@command
def risk_resume(reason: ReasonOpt, root: RootOpt = None) -> None:
    """ACTIVE: trade normally again."""
    _set_state(root, "ACTIVE", reason)


@app.command()
@command
def halt(reason: ReasonOpt, root: RootOpt = None) -> None:
    """Same as `alphaline risk halt`."""
    _set_state(root, "HALTED", reason)


@app.command()
@command
def resume(reason: ReasonOpt, root: RootOpt = None) -> None:
    """Same as `alphaline risk resume`."""
    _set_state(root, "ACTIVE", reason)


@app.command()
@command
def features(markdown: Annotated[bool, typer.Option(help="print a Markdown table")] = False,
             feature_set: Annotated[list[str] | None, typer.Option(
                 "--set", help="only these sets (repeatable)")] = None) -> None:
    """List every feature definition: set, name, inputs, window, description."""
    from alphaline.features.definitions import FEATURES, SETS

    chosen = set(feature_set or SETS)
    unknown = chosen - set(SETS)
    if unknown:
        console.print(f"[red]unknown feature sets {sorted(unknown)}[/red]; known: {list(SETS)}")
        raise typer.Exit(EXIT_CONFIG)
    rows = [f for f in FEATURES if f.feature_set in chosen]
    if markdown:
        print("| set | feature | inputs | window | description |\n|---|---|---|---:|---|")
        for f in rows:
            text = f.description.replace("|", "\\|")  # a literal pipe inside a cell
            print(f"| {f.feature_set} | `{f.name}` | {', '.join(f.inputs)} | {f.window} | "
                  f"{text} |")
        return
    table = Table("set", "feature", "inputs", "window", "description")
    for f in rows:
        table.add_row(f.feature_set, f.name, ", ".join(f.inputs), str(f.window), f.description)
    Console().print(table)


@app.command()
@command
def params(root: RootOpt = None) -> None:
    """Validate params.yaml and print it as loaded, then the stores it resolves to."""
    from alphaline.secrets import mask_secrets

    project = _project(root)
    print(json.dumps(mask_secrets(project.params.model_dump(mode="json")), indent=2))
    for line in store_lines(project):
        console.print(line, highlight=False, soft_wrap=True)


def store_lines(project: Project) -> list[str]:
    """Where the ledger, MLflow and Optuna are, passwords masked; an unset variable said as
    such."""
    s = project.params.storage
    out = []
    for label, attr, env in (("ledger", "ledger_url", s.ledger_url_env),
                             ("MLflow", "mlflow_tracking_uri", s.mlflow_tracking_uri_env),
                             ("Optuna", "optuna_url", s.optuna_url_env)):
        try:
            url = mask_url(getattr(project, attr))
        except ConfigError as exc:
            url = f"unresolved: {exc}"
        out.append(f"{label:<8} {url}" + (f"   (from ${env})" if env else ""))
    return out


@model_app.command("status")
@command
def model_status(root: RootOpt = None) -> None:
    """Champion and challenger, with the gate's reasons."""
    from alphaline.models.registry import CHALLENGER, CHAMPION, Registry

    project = _project(root)
    name = project.params.model.name
    registry = Registry.for_project(project)
    for model in (name, f"{name}-tft"):
        found = {a: registry.alias_version(model, a) for a in (CHAMPION, CHALLENGER)}
        if model != name and not any(found.values()):
            continue  # no TFT challenger trained
        for alias, version in found.items():
            if version is None:
                console.print(f"{alias}: none" if model == name else f"{model} {alias}: none")
                continue
            tags = registry.version_tags(model, version)
            console.print(f"{alias}: {model} v{version} — "
                          f"{tags.get('gate.decision', 'not gated')}: "
                          f"{tags.get('gate.reasons', '')}")


@model_app.command("rollback")
@command
def model_rollback(reason: Annotated[str, typer.Option(help="why the champion is replaced")],
                   root: RootOpt = None) -> None:
    """Re-point champion to the version promoted before the current one."""
    from alphaline.models.registry import Registry

    project = _project(root)
    name = project.params.model.name
    old, new = Registry.for_project(project).rollback(name, reason)
    console.print(f"champion: {name} v{old} → v{new}")


@db_app.command("upgrade")
@command
def db_upgrade(root: RootOpt = None) -> None:
    """Migrate the ledger to this code's schema (a no-op when it is there already)."""
    from alphaline.trading.ledger import upgrade

    url = _project(root).ledger_url
    before, after = upgrade(url)
    if before == after:
        console.print(f"ledger schema at {after} (head): nothing to do — {mask_url(url)}")
    else:
        console.print(f"ledger schema {before or 'none'} → {after} — {mask_url(url)}")


@db_app.command("status")
@command
def db_status(root: RootOpt = None) -> None:
    """The ledger's schema revision and the one this code expects."""
    from alphaline.trading.ledger import revisions

    url = _project(root).ledger_url
    current, head = revisions(url)
    state = "up to date" if current == head else "not at head: run `alphaline db upgrade`"
    print(f"ledger   {mask_url(url)}\ncurrent  {current or 'none'}\nhead     {head}\n{state}")


@app.command()
@command
def demo(root: RootOpt = None) -> None:
    """The whole loop on the embedded synthetic market: retrain, then two trading days."""
    import pandas as pd

    from alphaline.calendar import sessions
    from alphaline.flows.daily_trading import daily_trading
    from alphaline.flows.retrain import retrain as retrain_flow
    from alphaline.trading.ledger import Ledger, upgrade
    from alphaline.trading.ledger.models import Fill, Order

    project = _project(root)
    upgrade(project.ledger_url)
    p = project.params
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    out = retrain_flow(root=str(project.root), as_of=p.data.end, reason="demo")
    timings["retrain flow"] = time.perf_counter() - t0
    after = sessions(p.data.calendar, p.data.end + dt.timedelta(days=1),
                     p.data.end + dt.timedelta(days=10))[:2]
    days = []
    for day in after:
        t0 = time.perf_counter()
        days.append(daily_trading(day=day.date(), root=str(project.root)))
        timings[f"daily_trading {day.date()}"] = time.perf_counter() - t0

    backtest_page = None
    if out["promoted"]:  # the last quarter replayed, its model refitted monthly (walk-forward)
        from alphaline.pipelines.backtest import run_backtest

        t0 = time.perf_counter()
        bt = run_backtest(project, (pd.Timestamp(p.data.end) - pd.DateOffset(months=3)).date(),
                          p.data.end, retrain="monthly", name="demo")
        timings["backtest (last quarter, monthly refit)"] = time.perf_counter() - t0
        backtest_page = bt.report

    ledger = Ledger(project.ledger_url)
    orders, fills = ledger.table(Order), ledger.table(Fill)
    _print_metrics(f"model v{out['version']} — {'champion' if out['promoted'] else 'rejected'}",
                   out["oos"])
    for reason in out["reasons"]:
        console.print(f"  • {reason}")
    console.print(f"ledger: {len(orders)} orders ({(orders['status'] == 'FILLED').sum()} filled),"
                  f" {len(fills)} fills; NAV {days[-1]['nav']:,.2f} on {days[-1]['day']}")
    stages = Table("stage", "seconds")
    for stage, seconds in timings.items():
        stages.add_row(stage, f"{seconds:.1f}")
    console.print(stages)
    console.print(where_to_look(project, days[-1]["report"]), highlight=False, soft_wrap=True)
    walk_forward = project.reports_dir / "train" / f"v{out['version']}" / "index.html"
    if walk_forward.is_file():
        console.print(f"walk-forward report (after costs): {walk_forward}")
    if not out["promoted"]:
        sys.exit(EXIT_ERROR)
    print(f"backtest report: {backtest_page}")


def where_to_look(project: Project, report: str) -> str:
    """The demo's closing lines; every URL masked (a ledger URL may carry a password)."""
    return (
        "\nWhere to look:\n"
        f"  report        {report}\n"
        "  MLflow        mlflow ui --backend-store-uri "
        f"{mask_url(project.mlflow_tracking_uri)}\n"
        "  Prefect       prefect server start   (then http://127.0.0.1:4200)\n"
        f"  Data Docs     {project.gx_dir}/gx/uncommitted/data_docs/local_site/index.html\n"
        f"  ledger        {mask_url(project.ledger_url)}\n"
    )


def _print_metrics(title: str, metrics: dict) -> None:
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in ("rank_ic", "ic", "icir", "hit_rate", "sharpe_annualized",
                "sharpe_net_annualized", "turnover", "probabilistic_sharpe", "deflated_sharpe",
                "n_trials", "meta_primary_precision", "meta_precision", "meta_coverage"):
        if key in metrics:
            table.add_row(key, f"{metrics[key]:.4f}")
    console.print(table)


if __name__ == "__main__":
    app()
