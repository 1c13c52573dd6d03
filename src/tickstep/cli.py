"""The ``tickstep`` command: what an operator or a newcomer runs on their own machine."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from tickstep.strategies import ConfigError


def _cmd_run(args: argparse.Namespace) -> int:
    from tickstep.candles import bundled_file, load_csv
    from tickstep.config import default_config, load_config
    from tickstep.simulate import PaperSession

    config = load_config(args.config) if args.config else default_config()
    series = {}
    for m in config.markets:
        name = f"{m.market.base}-{m.market.quote}_{m.market.timeframe}.csv"
        series[m.market] = load_csv(bundled_file(name))
    result = PaperSession(config, series).run()
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
    from tickstep.config import default_config, load_config
    from tickstep.local.runtime import LocalRun, project_root, render_local_summary

    config = load_config(args.config) if args.config else default_config()
    root = project_root()
    log_path = Path(args.log) if args.log else root / "reports" / "local-lambda.log"
    report = LocalRun(root, config, candles=args.candles, log_path=log_path).run()
    print(render_local_summary(report))
    if args.report:
        Path(args.report).write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
        print(f"report written to {args.report}")
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tickstep", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="paper-trade the bundled candles with strategies and risk")
    run.add_argument("--config", help="a JSON trading configuration (default: the sample)")
    run.add_argument("--report", help="also write the summary as JSON to this path")
    run.set_defaults(func=_cmd_run)

    local = sub.add_parser(
        "local", help="run the whole AWS pipeline offline: template.yaml in moto, paper trading"
    )
    local.add_argument("--config", help="a JSON trading configuration (default: the sample)")
    local.add_argument("--candles", type=int, default=400, help="candle closes to replay")
    local.add_argument("--report", help="write the run's JSON report to this path")
    local.add_argument("--log", help="the functions' logs (default: reports/local-lambda.log)")
    local.set_defaults(func=_cmd_local)

    schemas = sub.add_parser("schemas", help="write (or --check) the events' JSON Schemas")
    schemas.add_argument("--out", default="events/schemas")
    schemas.add_argument("--check", action="store_true")
    schemas.set_defaults(func=_cmd_schemas)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (ConfigError, FileNotFoundError) as exc:
        print(f"tickstep: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
