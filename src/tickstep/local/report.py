"""What a local run or a drill reports: executions and their outcomes, orders against the paper
exchange (the ground truth), dead letters and why, Lambda figures; and its printed summary."""

from __future__ import annotations

import contextlib
import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tickstep.candles import CandleArrays
from tickstep.exchanges.errors import FatalExchangeError
from tickstep.exchanges.replay import ReplayFeed
from tickstep.failures import MALFORMED_INPUT_ERRORS
from tickstep.local import moto_state
from tickstep.local.cloud import LocalCloud
from tickstep.models import Market


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return round(ordered[index], 2)


def build_report(
    cloud: LocalCloud, series: dict[Market, CandleArrays], feed: ReplayFeed
) -> dict[str, Any]:
    """The run's figures, with the paper exchange as the ground truth for orders."""
    from tickstep.exchanges.paper import PaperState
    from tickstep.stores import PortfolioStore

    env = cloud.functions["ExecuteFunction"].environment
    portfolio = PortfolioStore(cloud.ddb, env["PORTFOLIO_TABLE"])
    state_json, _ = portfolio.paper_state()
    paper = PaperState.model_validate_json(state_json) if state_json else PaperState()

    ledger = {
        item["pk"]["S"]: item
        for page in cloud.ddb.get_paginator("scan").paginate(TableName=env["ORDERS_TABLE"])
        for item in page["Items"]
    }
    by_client: dict[str, list[Any]] = defaultdict(list)
    for order in paper.orders.values():
        by_client[order.client_order_id].append(order)
    mismatches = []
    for intent_id, item in ledger.items():
        exchange = by_client.get(intent_id, [])
        status = item.get("status", {}).get("S")
        if not exchange:
            if status not in ("new", "rejected", "failed"):
                mismatches.append(f"{intent_id}: ledger {status}, exchange has no order")
            continue
        last = exchange[-1]
        if status != last.status.value:
            mismatches.append(f"{intent_id}: ledger {status}, exchange {last.status.value}")
    for client_id in by_client:
        if client_id not in ledger:
            mismatches.append(f"{client_id}: on the exchange, not in the ledger")

    executions = execution_counts(cloud)
    transitions, outcomes, decisions = _execution_details(cloud)
    dlqs = cloud.dead_letter_queues()
    letters = _dead_letters(cloud, dlqs)
    balances = {c: b.total for c, b in paper.balances.items()}
    last_close = {m: Decimal(repr(float(a.close[-1]))) for m, a in series.items()}
    markets: dict[str, Any] = {}
    equity_by_quote: dict[str, Decimal] = defaultdict(Decimal, balances)
    for position in portfolio.positions():
        market = position.market
        price = _price_now(feed, market, last_close)
        value = position.amount * price
        markets[market.key] = {
            "position": str(position.amount),
            "realized_pnl": str(position.realized_pnl),
            "unrealized_pnl": str(
                position.amount * (price - position.average_price)
                if position.average_price is not None
                else Decimal(0)
            ),
        }
        equity_by_quote[market.quote] += value
    fills = list(paper.fills)
    return {
        "executions": executions,
        "non_terminal_executions": sum(
            n for sm in executions.values() for s, n in sm.items() if s == "RUNNING"
        ),
        "orders": {
            "intents": len(ledger),
            "exchange_orders": len(paper.orders),
            "by_status": dict(Counter(i.get("status", {}).get("S", "?") for i in ledger.values())),
            "intents_with_multiple_exchange_orders": sum(
                1 for v in by_client.values() if len(v) > 1
            ),
            "ledger_mismatches": len(mismatches),
            "mismatch_details": mismatches[:20],
        },
        "fills": len(fills),
        "fees": str(sum((f.fee for f in fills), Decimal(0))),
        "signals": dict(outcomes),
        "risk_decisions": dict(decisions),
        "dead_letters": queue_depths(cloud, dlqs),
        "dead_letter_reasons": _count_reasons(letters),
        "dead_letters_valid": {
            queue: sum(1 for letter in letters.get(queue, []) if letter.valid) for queue in dlqs
        },
        "valid_dead_letter_details": [
            {"queue": queue, "reason": letter.reason, "cause": letter.cause}
            for queue, queued in letters.items()
            for letter in queued
            if letter.valid
        ][:20],
        "lambda": {
            name: {
                "invocations": len(stats.durations_ms),
                "errors": stats.errors,
                "p50_ms": _percentile(stats.durations_ms, 0.5),
                "p95_ms": _percentile(stats.durations_ms, 0.95),
                "max_ms": _percentile(stats.durations_ms, 1.0),
                # On Lambda: without moto's answers, with each AWS call's published latency.
                "p50_modelled_ms": _percentile(stats.modelled_ms, 0.5),
                "p95_modelled_ms": _percentile(stats.modelled_ms, 0.95),
            }
            for name, stats in sorted(cloud.stats.items())
        },
        "state_transitions": transitions,
        "pnl": {
            "markets": markets,
            "balances": {c: str(v) for c, v in balances.items()},
            "equity": {
                c: str(v) for c, v in equity_by_quote.items() if c in {m.quote for m in series}
            },
        },
    }


@dataclass(frozen=True)
class DeadLetter:
    reason: str
    """The error a decide failure carries, or the delivery error EventBridge attached."""
    cause: str

    @property
    def valid(self) -> bool:
        """Whether the message was valid input: any reason but a malformed-input one means a
        valid event was lost (a bug, or an outage the retries did not outlast)."""
        return self.reason not in MALFORMED_INPUT_ERRORS


def _dead_letters(cloud: LocalCloud, queues: list[str]) -> dict[str, list[DeadLetter]]:
    """Every dead letter and why it is there, by queue (read, not removed: they stay in the
    queue)."""
    letters: dict[str, list[DeadLetter]] = {}
    for queue in queues:
        seen: set[str] = set()
        while True:
            messages = cloud.sqs.receive_message(
                QueueUrl=cloud.queues[queue],
                MaxNumberOfMessages=10,
                VisibilityTimeout=30,
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            fresh = [m for m in messages if m["MessageId"] not in seen]
            if not fresh:
                break
            for message in fresh:
                seen.add(message["MessageId"])
                letters.setdefault(queue, []).append(_dead_letter(message))
    return letters


def _count_reasons(letters: dict[str, list[DeadLetter]]) -> dict[str, dict[str, int]]:
    return {
        queue: dict(Counter(letter.reason for letter in queued))
        for queue, queued in letters.items()
        if queued
    }


def _dead_letter(message: dict[str, Any]) -> DeadLetter:
    attributes = message.get("MessageAttributes", {})
    if attributes.get("ERROR_CODE"):
        cause = attributes.get("ERROR_MESSAGE", {}).get("StringValue", "")
        return DeadLetter(str(attributes["ERROR_CODE"]["StringValue"]), str(cause)[:300])
    try:
        body = json.loads(message["Body"])
    except json.JSONDecodeError:
        return DeadLetter("unreadable", message["Body"][:300])
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and error.get("Error"):
        cause = str(error.get("Cause", ""))
        # A Lambda task's cause is the function's error: {errorType, errorMessage}.
        with contextlib.suppress(ValueError, AttributeError):
            cause = str(json.loads(cause).get("errorMessage", cause))
        return DeadLetter(str(error["Error"]), cause[:300])
    return DeadLetter("no reason", message["Body"][:300])


def _price_now(feed: ReplayFeed, market: Market, fallback: dict[Market, Decimal]) -> Decimal:
    try:
        return feed.price(market, feed.now_ms())
    except FatalExchangeError:  # no candle in progress (a gap, or the end of the data)
        return fallback[market]


DECIDE_OUTCOMES = frozenset(
    {"Hold", "NoIntent", "Denied", "OrderStarted", "AlreadyStarted", "MarketFailed"}
)
"""The decide workflow's per-market end states (each Map iteration ends in one)."""


def _execution_details(
    cloud: LocalCloud,
) -> tuple[dict[str, int], Counter[str], Counter[str]]:
    """State transitions per state machine, each market's decide outcome, risk's decisions."""
    transitions: dict[str, int] = {}
    outcomes: Counter[str] = Counter()
    decisions: Counter[str] = Counter()
    for logical_id, arn in cloud.state_machines.items():
        count = 0
        for page in cloud.sfn.get_paginator("list_executions").paginate(stateMachineArn=arn):
            for execution in page["executions"]:
                history = moto_state.execution_history(execution["executionArn"])
                count += sum(1 for e in history if e["type"].endswith("StateEntered"))
                if logical_id == "DecideStateMachine":
                    count_decide_outcomes(history, outcomes, decisions)
        transitions[logical_id] = count
    return transitions, outcomes, decisions


def count_decide_outcomes(
    history: list[dict[str, Any]], outcomes: Counter[str], decisions: Counter[str]
) -> None:
    for event in history:
        if event["type"].endswith("StateEntered"):
            name = event["stateEnteredEventDetails"]["name"]
            if name in DECIDE_OUTCOMES:
                outcomes[name] += 1
        elif event["type"].endswith("StateExited"):
            details = event["stateExitedEventDetails"]
            if details["name"] != "CheckRisk" or not details.get("output"):
                continue
            decision = json.loads(details["output"]).get("decision") or {}
            if decision.get("approved"):
                decisions["approved"] += 1
            for reason in decision.get("reasons", []):
                if reason != "APPROVED":
                    decisions[f"denied:{reason}"] += 1


def render_local_summary(report: dict[str, Any]) -> str:
    """The end-of-run table of ``tickstep local``."""
    lines = [
        "",
        f"tickstep local: {report['ticks']} candle closes in {report['wall_seconds']}s",
        "",
        "executions by state machine and status:",
    ]
    for sm, by in sorted(report["executions"].items()):
        status = ", ".join(f"{s} {n}" for s, n in sorted(by.items())) or "none"
        lines.append(f"  {sm:<24}{status}  ({report['state_transitions'].get(sm, 0)} transitions)")
    lines.append("decide outcomes (per market):")
    lines += [f"  {k:<24}{v:>6}" for k, v in sorted(report["signals"].items())]
    lines.append("risk decisions:")
    lines += [f"  {k:<34}{v:>6}" for k, v in sorted(report["risk_decisions"].items())]
    orders = report["orders"]
    lines += [
        f"orders: {orders['intents']} intents, {orders['exchange_orders']} exchange orders, "
        f"by status {orders['by_status']}",
        f"  intents with more than one exchange order: "
        f"{orders['intents_with_multiple_exchange_orders']}, ledger mismatches: "
        f"{orders['ledger_mismatches']}",
        f"fills: {report['fills']}, fees: {report['fees']}",
        f"dead letters: {report['dead_letters']}",
        f"  reasons: {report['dead_letter_reasons']}",
        f"  valid events dead-lettered (must be 0; every dead letter should be malformed input):"
        f" {report['dead_letters_valid']}",
    ]
    lines += [
        f"    {d['queue']}: {d['reason']}: {d['cause'][:120]}"
        for d in report["valid_dead_letter_details"][:5]
    ]
    lines.append("lambda (invocations, p50/p95 ms here; p50 modelled on Lambda):")
    lines += [
        f"  {name:<24}{s['invocations']:>6}  {s['p50_ms']:>8} / {s['p95_ms']:<8}"
        f" on Lambda {s.get('p50_modelled_ms', '-'):>8}  errors {s['errors']}"
        for name, s in report["lambda"].items()
    ]
    lines.append("PnL per market:")
    for key, m in sorted(report["pnl"]["markets"].items()):
        lines.append(
            f"  {key:<24} position {float(m['position']):>12.6f}  realized "
            f"{float(m['realized_pnl']):>12.8f}  unrealized {float(m['unrealized_pnl']):>12.8f}"
        )
    lines.append(f"equity: {report['pnl']['equity']}")
    return "\n".join(lines)


def execution_counts(cloud: LocalCloud) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for logical_id, arn in cloud.state_machines.items():
        by_status: dict[str, int] = defaultdict(int)
        for page in cloud.sfn.get_paginator("list_executions").paginate(stateMachineArn=arn):
            for e in page["executions"]:
                by_status[e["status"]] += 1
        counts[logical_id] = dict(by_status)
    return counts


def queue_depths(cloud: LocalCloud, logical_ids: list[str]) -> dict[str, int]:
    depths = {}
    for logical_id in logical_ids:
        attrs = cloud.sqs.get_queue_attributes(
            QueueUrl=cloud.queues[logical_id],
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
            ],
        )["Attributes"]
        depths[logical_id] = int(attrs["ApproximateNumberOfMessages"]) + int(
            attrs["ApproximateNumberOfMessagesNotVisible"]
        )
    return depths
