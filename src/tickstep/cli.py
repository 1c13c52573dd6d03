"""The ``tickstep`` command: what an operator or a newcomer runs on their own machine."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tickstep.errors import ConfigError

if TYPE_CHECKING:
    from tickstep.config import TradingConfig


def _config(args: argparse.Namespace) -> TradingConfig:
    """``--config FILE``, or the bundled sample configuration."""
    from tickstep.config import default_config, load_config

    return load_config(args.config) if args.config else default_config()


def _cmd_run(args: argparse.Namespace) -> int:
    from tickstep.candles import bundled_series
    from tickstep.simulate import PaperSession

    config = _config(args)
    series = bundled_series(m.market for m in config.markets)
    try:
        session = PaperSession(config, series, candles=args.candles)
    except ValueError as exc:  # markets in two quote currencies, or no candle close to replay
        print(f"tickstep run: {exc}", file=sys.stderr)
        return 2
    result = session.run()
    print(render_summary(result.to_dict()))
    if args.report:
        Path(args.report).write_text(json.dumps(result.to_dict(), indent=2) + "\n")
        print(f"report written to {args.report}")
    return 0


def render_summary(report: dict[str, object]) -> str:
    """The end-of-run table: signals, risk decisions, orders, fills, fees and PnL per market."""
    markets = report["markets"]
    assert isinstance(markets, dict)
    quote = report["quote"]
    lines = [
        f"tickstep paper session: {report['candles']} candles, trading state "
        f"{report['trading_state']}",
        "",
        f"{'market':<22}{'BUY':>6}{'SELL':>6}{'HOLD':>7}{'orders':>8}{'fills':>7}"
        f"{'fees':>14}{'realized':>14}{'unrealized':>14}",
    ]
    for key, s in markets.items():
        sig = s["signals"]
        lines.append(
            f"{key:<22}{sig.get('BUY', 0):>6}{sig.get('SELL', 0):>6}{sig.get('HOLD', 0):>7}"
            f"{s['orders']:>8}{s['fills']:>7}{float(s['fees']):>14.8f}"
            f"{float(s['realized_pnl']):>14.8f}{float(s['unrealized_pnl']):>14.8f}"
        )
    decisions = report["decisions"]
    assert isinstance(decisions, dict)
    lines += ["", "risk decisions:"]
    lines += [f"  {k:<34}{v:>6}" for k, v in sorted(decisions.items())]
    lines += [
        "",
        f"equity: {report['start_equity']} -> {report['end_equity']} {quote} "
        f"(PnL {report['pnl']} {quote})",
    ]
    return "\n".join(lines)


def _cmd_local(args: argparse.Namespace) -> int:
    from tickstep.local.runtime import LocalRun, project_root, render_local_summary

    config = _config(args)
    root = project_root()
    log_path = Path(args.log) if args.log else root / "reports" / "local-lambda.log"

    out = sys.stdout  # the terminal: the functions' own output goes to their log meanwhile

    def show(report: dict[str, Any]) -> None:
        print(render_local_summary(report), file=out, flush=True)
        if args.report:
            Path(args.report).write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
            print(f"report written to {args.report}", file=out, flush=True)

    server = _dashboard_server(args, root, show) if args.serve else None
    run = LocalRun(root, config, candles=args.candles, log_path=log_path, attach=server)
    report = run.run()
    if server is None:
        show(report)
    failed = {
        sm: n
        for sm, by in report["executions"].items()
        for s, n in by.items()
        if s not in ("SUCCEEDED",) and n
    }
    if report["non_terminal_executions"] or failed:
        print(f"tickstep local: executions not succeeded: {failed}", file=sys.stderr)
        return 1
    return 0


def _cmd_cost(args: argparse.Namespace) -> int:
    import io

    from tickstep.config import default_config
    from tickstep.cost import estimate, fixed_from_template, per_tick_from_report
    from tickstep.local.runtime import LocalRun, project_root
    from tickstep.local.template import load_template

    root = project_root()
    if args.report:
        report = json.loads(Path(args.report).read_text())
    else:
        log_path = root / "reports" / "cost-lambda.log"
        report = LocalRun(
            root, default_config(), candles=args.candles, out=io.StringIO(), log_path=log_path
        ).run()
    log = report.get("lambda_log")
    if log and Path(log).is_file():
        report["lambda_log_bytes"] = Path(log).stat().st_size
    template = load_template(root / "template.yaml")
    memory = {
        name: int(res["Properties"].get("MemorySize", 256))
        for name, res in template["Resources"].items()
        if res["Type"] == "AWS::Serverless::Function"
    }
    per_tick = per_tick_from_report(report, memory)
    fixed = fixed_from_template(template, report)
    listed = estimate(per_tick, fixed, markets=args.markets, timeframe=args.timeframe)
    free = estimate(per_tick, fixed, markets=args.markets, timeframe=args.timeframe, free_tier=True)
    result = listed.to_dict()
    result["monthly_usd_with_free_tier"] = float(free.monthly_usd)
    result["monthly_usd_services_with_free_tier"] = float(free.services_usd)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(
        f"{args.markets} markets on {args.timeframe} candles: "
        f"{listed.ticks_per_month:,.0f} decisions a month ({listed.assumptions['month_days']} days)"
    )
    for item, usd in sorted(listed.breakdown.items(), key=lambda kv: -kv[1]):
        print(f"  {item:<40} ${float(usd):>8.2f}")
    print(f"  {'':<40} {'list':>9} {'free tier':>10}")
    print(
        f"  {'services (all but the monitoring)':<40} ${float(listed.services_usd):>8.2f}"
        f" ${float(free.services_usd):>9.2f}"
    )
    print(f"  {'total':<40} ${float(listed.monthly_usd):>8.2f} ${float(free.monthly_usd):>9.2f}")
    print(f"prices: AWS list prices, {result['region']}, as of {result['prices_as_of']}")
    return 0


def _cmd_drill(args: argparse.Namespace) -> int:
    from tickstep.config import drill_config
    from tickstep.local.faults import FaultInjector, FaultSpecError, parse_fault_spec
    from tickstep.local.runtime import LocalRun, project_root, render_local_summary

    try:
        probabilities = parse_fault_spec(args.faults)
    except FaultSpecError as exc:
        print(f"tickstep drill: --faults {exc}", file=sys.stderr)
        return 2
    root = project_root()
    faults = FaultInjector(probabilities, seed=args.seed)
    report = LocalRun(
        root,
        drill_config(),
        candles=args.max_candles,
        log_path=Path(args.log) if args.log else root / "reports" / "drill-lambda.log",
        faults=faults,
        stop_after_intents=args.intents,
        retry_time_scale=args.retry_time_scale,
        orders_across_closes=True,
    ).run()
    report["drill"] = {"faults": probabilities, "seed": args.seed, "intents_wanted": args.intents}
    print(render_local_summary(report))
    print(f"faults injected: {report.get('faults_injected', {})}")
    if args.report:
        Path(args.report).write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
        print(f"report written to {args.report}")
    orders = report["orders"]
    # Only malformed input may be dead-lettered: a valid event there is a decision lost.
    broken = (
        orders["intents_with_multiple_exchange_orders"]
        or orders["ledger_mismatches"]
        or report["non_terminal_executions"]
        or sum(report["dead_letters_valid"].values())
        or report["undecided_candle_closes"]
    )
    return 1 if broken else 0


def _output_file(option: str, path: str, example: str) -> Path:
    """A file the command will write, checked before the work: not a folder, in a folder
    that exists. Nothing is written."""
    target = Path(path)
    if target.is_dir():
        raise ConfigError(f"{option} {path}: is a directory; give a file name such as {example}")
    if not target.parent.is_dir():
        raise ConfigError(f"{option} {path}: the directory {target.parent} does not exist")
    return target


def _decimal(option: str, text: str) -> Decimal:
    """A money or rate option as an exact decimal, or a :class:`ConfigError` naming it."""
    try:
        return Decimal(text)
    except InvalidOperation:
        raise ConfigError(f"{option}: expected a decimal number, got {text!r}") from None


def _cmd_backtest(args: argparse.Namespace) -> int:
    from tickstep.backtest import (
        BacktestSettings,
        ProgressBar,
        render_summary,
        run_backtest,
        write_json,
    )
    from tickstep.strategies import StrategyConfig, build_strategy, parse_param_assignments

    # A ConfigError (a bad option, file or strategy) is answered by main(): exit 2, named.
    params = parse_param_assignments(args.param)
    strategy = build_strategy(StrategyConfig(name=args.strategy, params=params))
    step = None if args.amount_step is None else _decimal("--amount-step", args.amount_step)
    settings = BacktestSettings(_decimal("--stake", args.stake), _decimal("--fee", args.fee), step)
    # Before the run: a missing matplotlib or folder fails fast, not after it.
    if args.json:
        _output_file("--json", args.json, "report.json")
    if args.plot:
        from tickstep.plot import require_matplotlib

        require_matplotlib()
        _output_file("--plot", args.plot, "report.png")
    progress = ProgressBar(sys.stderr) if sys.stderr.isatty() else None
    result = run_backtest(args.data, strategy, settings, progress=progress)
    _warn("backtest", result.warnings)
    print(render_summary(result))
    if args.json:
        write_json(result, args.json, args.equity_points)
        print(f"report written to {args.json}")
    if args.plot:
        from tickstep.plot import candle_files, plot_backtest

        shown = ", ".join(f"{k}={v}" for k, v in strategy.params.model_dump().items())
        title = f"tickstep backtest: {result.strategy}" + (f" ({shown})" if shown else "")
        try:
            plot_backtest(result, args.plot, title=title, prices=candle_files(args.data))
        except OSError as exc:
            print(f"tickstep backtest: --plot {args.plot}: {exc}", file=sys.stderr)
            return 2
        print(f"plot written to {args.plot}")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from tickstep.training import (
        TrainOptions,
        render_train_summary,
        train_files,
        write_model,
    )

    # A ConfigError (a bad option or file) is answered by main(): exit 2, named.
    out = _output_file("--out", args.out, "model.json")  # before the work: fail fast
    numbers = ("horizon", "folds", "holdout", "l2", "seed", "buy_above", "sell_below")
    options = TrainOptions(
        **{name: getattr(args, name) for name in numbers},
        stake=_decimal("--stake", args.stake),
        fee=_decimal("--fee", args.fee),
    )
    result = train_files(args.data, options)
    _warn("train", result.warnings)
    print(render_train_summary(result))
    write_model(result.model, out)
    print(f"model written to {out}")
    return 0


def _cmd_schemas(args: argparse.Namespace) -> int:
    from tickstep.schemas import stale_schemas, write_schemas

    out = Path(args.out)
    if args.check:
        stale = stale_schemas(out)
        if stale:
            print(f"stale schemas in {out}: {', '.join(stale)} (run `make schemas`)")
            return 1
        print(f"schemas in {out} are up to date")
        return 0
    for path in write_schemas(out):
        print(path)
    return 0


def _cmd_trading_state(args: argparse.Namespace) -> int:
    """``halt``, ``resume`` and ``status``: the deployed stack's kill switch."""
    from tickstep.models import TradingState
    from tickstep.operator import (
        OperatorError,
        change_trading_state,
        connect,
        describe_record,
        trading_state,
    )

    try:
        clients = connect(region=args.region, profile=args.profile)
        if args.command == "status":
            record = trading_state(args.stack, clients=clients)
        else:
            state = TradingState.HALTED if args.command == "halt" else TradingState.ACTIVE
            record = change_trading_state(
                state, stack=args.stack, reason=args.reason, clients=clients
            )
    except OperatorError as exc:
        print(f"tickstep {args.command}: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(record.model_dump_json())
    else:
        print(f"{args.stack}: {describe_record(record)}")
    return 0


def _add_backtest_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    backtest = sub.add_parser(
        "backtest", help="backtest a strategy over candle CSVs (next-open fills, fees, gaps)"
    )
    backtest.add_argument(
        "--data", nargs="+", required=True, metavar="FILE", help="BASE-QUOTE_TF.csv per market"
    )
    backtest.add_argument("--strategy", required=True, help="a registered strategy name")
    backtest.add_argument(
        "--param", action="append", default=[], metavar="K=V", help="a strategy parameter"
    )
    backtest.add_argument("--stake", required=True, help="quote currency per trade, e.g. 0.01")
    backtest.add_argument("--fee", required=True, help="fee rate per side, e.g. 0.001")
    backtest.add_argument("--amount-step", help="truncate amounts to this step (default: exact)")
    backtest.add_argument("--json", metavar="PATH", help="write trades, summary and equity")
    backtest.add_argument(
        "--plot",
        metavar="PATH",
        help="write a PNG: equity, drawdown, each market's close and trades (needs matplotlib)",
    )
    backtest.add_argument(
        "--equity-points",
        type=int,
        default=10_000,
        help="equity curve points in --json at most (every k-th candle); 0: every candle",
    )
    backtest.set_defaults(func=_cmd_backtest)


def _add_train_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    train = sub.add_parser(
        "train", help="train the ml strategy's model on candle CSVs (walk-forward validated)"
    )
    train.add_argument(
        "--data", nargs="+", required=True, metavar="FILE", help="BASE-QUOTE_TF.csv per market"
    )
    train.add_argument("--out", required=True, metavar="MODEL.json", help="the model file")
    train.add_argument("--seed", type=int, default=42, help="starting weights' seed")
    train.add_argument("--horizon", type=int, default=12, help="candles ahead the label looks")
    train.add_argument("--folds", type=int, default=5, help="walk-forward folds")
    train.add_argument("--holdout", type=float, default=0.2, help="final share of each file")
    train.add_argument("--l2", type=float, default=1.0, help="L2 penalty on the weights")
    train.add_argument("--buy-above", type=float, default=0.55, help="the model's BUY threshold")
    train.add_argument("--sell-below", type=float, default=0.45, help="its SELL threshold")
    train.add_argument("--stake", default="1", help="held-out backtests: quote per trade")
    train.add_argument("--fee", default="0.001", help="held-out backtests: fee rate per side")
    train.set_defaults(func=_cmd_train)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tickstep", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="paper-trade the bundled candles with strategies and risk")
    run.add_argument("--config", help="a JSON trading configuration (default: the sample)")
    run.add_argument("--report", help="also write the summary as JSON to this path")
    run.add_argument(
        "--candles", type=int, help="candle closes to replay (default: all the bundled candles)"
    )
    run.set_defaults(func=_cmd_run)

    local = sub.add_parser(
        "local", help="run the whole AWS pipeline offline: template.yaml in moto, paper trading"
    )
    local.add_argument("--config", help="a JSON trading configuration (default: the sample)")
    local.add_argument("--candles", type=int, default=400, help="candle closes to replay")
    local.add_argument("--report", help="write the run's JSON report to this path")
    local.add_argument("--log", help="the functions' logs (default: reports/local-lambda.log)")
    local.set_defaults(func=_cmd_local)

    cost = sub.add_parser("cost", help="estimate the monthly AWS bill from a measured local run")
    cost.add_argument("--markets", type=int, default=20)
    cost.add_argument("--timeframe", default="1m")
    cost.add_argument("--json", action="store_true", help="print monthly_usd and the breakdown")
    cost.add_argument("--report", help="a tickstep local --report file (default: measure now)")
    cost.add_argument("--candles", type=int, default=60, help="candles to measure when no report")
    cost.set_defaults(func=_cmd_cost)

    drill = sub.add_parser(
        "drill", help="run the offline pipeline with injected faults and check nothing broke"
    )
    drill.add_argument("--faults", required=True, help="NAME=PROB,... (see tickstep.local.faults)")
    drill.add_argument("--seed", type=int, default=0)
    drill.add_argument("--intents", type=int, default=100, help="stop once this many exist")
    drill.add_argument("--max-candles", type=int, default=5000, help="candle closes at most")
    drill.add_argument(
        "--retry-time-scale",
        type=float,
        default=0.005,
        help="state machine retry intervals run this much faster than real time",
    )
    drill.add_argument("--report", help="write the JSON report (local's schema + faults_injected)")
    drill.add_argument("--log", help="the functions' logs (default: reports/drill-lambda.log)")
    drill.set_defaults(func=_cmd_drill)

    _add_backtest_parser(sub)

    _add_train_parser(sub)

    schemas = sub.add_parser("schemas", help="write (or --check) the events' JSON Schemas")
    schemas.add_argument("--out", default="events/schemas")
    schemas.add_argument("--check", action="store_true")
    schemas.set_defaults(func=_cmd_schemas)

    for name, help_text in (
        ("halt", "kill switch: stop every new order of a deployed stack (publishes the change)"),
        ("resume", "kill switch: set a deployed stack's trading back to ACTIVE"),
        ("status", "show a deployed stack's trading state: who set it, when and why"),
    ):
        switch = sub.add_parser(name, help=help_text)
        switch.add_argument("--stack", required=True, help="the CloudFormation stack name")
        if name != "status":
            switch.add_argument("--reason", required=True, help="why (kept and alarmed)")
        switch.add_argument("--region", help="AWS region (default: the usual AWS config)")
        switch.add_argument("--profile", help="AWS profile (default: the usual AWS config)")
        switch.add_argument("--json", action="store_true", help="print the state record as JSON")
        switch.set_defaults(func=_cmd_trading_state)
    _add_operations_parsers(sub)
    _add_dashboard_parsers(sub)
    return parser


OPERATIONS_ENVIRONMENTS = ("test", "production")
"""tickstep.operations.environments.ENVIRONMENTS, named here so --help imports nothing."""


def _cmd_operations(args: argparse.Namespace) -> int:
    from tickstep.operations import commands

    if args.command == "deploy":
        return commands.deploy(args.environment, as_json=args.json)
    if args.command == "rollback":
        return commands.rollback(args.environment, to=args.to, as_json=args.json)
    if args.command == "validate":
        return int(commands.validate(args.environment, as_json=args.json))
    return int(commands.health_checks(args.environment, as_json=args.json))


def _add_operations_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """deploy, rollback, validate, health-checks: the runbook's commands
    (deployment/scripts/*.sh wrap them; docs/RUNBOOK.md)."""
    for name, help_text in (
        ("deploy", "build, sam deploy, record the release, then validate"),
        ("rollback", "move every alias back to an earlier release's versions, then health-check"),
        ("validate", "every named check of a deployed stack, with pass/fail and the reason"),
        ("health-checks", "the quick read-only checks (safe every minute)"),
    ):
        command = sub.add_parser(name, help=help_text, description=help_text)
        command.add_argument("environment", choices=OPERATIONS_ENVIRONMENTS)
        command.add_argument("--json", action="store_true", help="one JSON document at the end")
        if name == "rollback":
            command.add_argument("--to", metavar="RELEASE", help="a release id (default: previous)")
        command.set_defaults(func=_cmd_operations)


def _dashboard_server(args: argparse.Namespace, root: Path, show: Any) -> Any:
    from tickstep.dashboard.server import DashboardServer

    return DashboardServer(root / "frontend" / "dist", port=args.port, on_report=show)


def _cmd_frontend(args: argparse.Namespace) -> int:
    from tickstep.dashboard.release import deploy_command, rollback_command

    if args.command == "deploy-frontend":
        return deploy_command(args.environment, dist=args.dist)
    return rollback_command(args.environment)


def _add_dashboard_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``tickstep local --serve [--port N]`` (the dashboard over the offline run) and the
    page's releases (deployment/scripts/deploy-frontend.sh and rollback-frontend.sh)."""
    local = sub.choices["local"]
    local.add_argument(
        "--serve",
        action="store_true",
        help="serve the dashboard on 127.0.0.1 during and after the replay (Ctrl-C stops)",
    )
    local.add_argument("--port", type=int, default=8765, help="the dashboard's port (0: any)")
    for name, help_text in (
        ("deploy-frontend", "upload the built page as a new release and switch CloudFront to it"),
        ("rollback-frontend", "switch CloudFront back to the previous page release"),
    ):
        command = sub.add_parser(name, help=help_text, description=help_text)
        command.add_argument("environment", choices=OPERATIONS_ENVIRONMENTS)
        if name == "deploy-frontend":
            command.add_argument("--dist", default="frontend/dist", help="the built page")
        command.set_defaults(func=_cmd_frontend)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (ConfigError, FileNotFoundError) as exc:
        print(f"tickstep {args.command}: {exc}", file=sys.stderr)
        return 2


def _warn(command: str, warnings: Sequence[str]) -> None:
    for warning in warnings:
        print(f"tickstep {command}: warning: {warning}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
