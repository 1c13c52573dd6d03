// Renders the dashboard from its data; amounts through format.ts only.
import { byId, el } from "./dom";
import { age, amount, shortId, signOf, utc } from "./format";
import { allowedActions } from "./state";
import type { Dashboard, MarketRow, OrderRow } from "./types";

const STATE_CLASS: Record<string, string> = {
  ACTIVE: "ok",
  REDUCING: "warn",
  HALTED: "danger",
};

export function renderState(data: Dashboard): void {
  const record = data.trading_state;
  byId("mode").textContent = data.mode;
  const value = byId("state-value");
  value.textContent = record.state;
  value.className = `state-value ${STATE_CLASS[record.state] ?? ""}`;
  byId("state").dataset.state = record.state;
  byId("state-detail").textContent = record.changed_at
    ? `since ${utc(record.changed_at)}, by ${record.changed_by}: ${record.reason || "no reason given"}`
    : "never changed";
  const allowed = allowedActions(record.state);
  for (const button of document.querySelectorAll<HTMLButtonElement>("[data-action]")) {
    button.disabled = !allowed.includes(button.dataset.action as never);
  }
}

function pnl(text: string, quote: string): HTMLElement {
  const sign = signOf(text);
  return el("td", { class: `num ${sign > 0 ? "gain" : sign < 0 ? "loss" : ""}` }, amount(text, quote, true));
}

export function renderSummary(data: Dashboard): void {
  const cards: [string, string, string?][] = [];
  for (const [quote, value] of Object.entries(data.equity)) {
    cards.push([`Equity (${quote})`, amount(value, quote), "equity"]);
  }
  for (const [quote, pnl] of Object.entries(data.pnl)) {
    cards.push([`Realised PnL (${quote})`, amount(pnl.realized, quote, true), "realised"]);
    cards.push([`Unrealised PnL (${quote})`, amount(pnl.unrealized, quote, true), "unrealised"]);
  }
  cards.push(["Orders", String(data.order_count), "orders"]);
  cards.push(["Fills", String(data.fill_count), "fills"]);
  cards.push(["Fees", amount(data.fees), "fees"]);
  const list = byId("summary");
  list.replaceChildren(
    ...cards.map(([term, value, key]) =>
      el("div", { class: "card", "data-key": key ?? "" }, el("dt", {}, term), el("dd", {}, value)),
    ),
  );
}

function candleCell(row: MarketRow): HTMLElement {
  return el(
    "td",
    { class: row.stale ? "stale" : "" },
    utc(row.last_candle_close),
    el("br"),
    el("small", {}, row.stale ? `⚠ stale: ${age(row.age_ms)} old` : `${age(row.age_ms)} ago`),
  );
}

function signalCell(row: MarketRow): HTMLElement {
  const s = row.last_signal;
  if (!s) return el("td", {}, "none yet");
  const indicators = Object.entries(s.indicators)
    .slice(0, 4)
    .map(([k, v]) => `${k} ${Number.isInteger(v) ? v : v.toPrecision(6)}`)
    .join(", ");
  return el(
    "td",
    {},
    el("span", { class: `action ${s.action.toLowerCase()}` }, s.action),
    " ",
    s.reason,
    indicators ? el("br") : null,
    indicators ? el("small", {}, indicators) : null,
  );
}

/** A table's column: its header, and the cell it shows for a row (a numeric one aligns right). */
interface Column<T> {
  header: string;
  numeric?: boolean;
  cell: (row: T) => HTMLElement;
}

function renderHead<T>(id: string, columns: Column<T>[]): void {
  const headers = columns.map((c) => el("th", c.numeric ? { scope: "col", class: "num" } : { scope: "col" }, c.header));
  byId(id).replaceChildren(el("thead", {}, el("tr", {}, ...headers)), el("tbody"));
}

/** A row per record, each cell from its column; when there is none, one row saying `empty`. */
function renderRows<T>(
  id: string,
  columns: Column<T>[],
  rows: T[],
  empty: string,
  attrs: (row: T) => Record<string, string>,
): void {
  byId(id)
    .querySelector("tbody")!
    .replaceChildren(
      ...(rows.length
        ? rows.map((row) => el("tr", attrs(row), ...columns.map((c) => c.cell(row))))
        : [el("tr", {}, el("td", { colspan: String(columns.length) }, empty))]),
    );
}

const MARKET_COLUMNS: Column<MarketRow>[] = [
  { header: "Market", cell: (row) => el("th", { scope: "row" }, `${row.symbol} `, el("small", {}, row.timeframe)) },
  { header: "Last candle", cell: candleCell },
  { header: "Last signal", cell: signalCell },
  { header: "Position", numeric: true, cell: (row) => el("td", { class: "num", "data-key": "position" }, amount(row.position)) },
  { header: "Realised PnL", numeric: true, cell: (row) => pnl(row.realized_pnl, row.quote) },
  { header: "Unrealised PnL", numeric: true, cell: (row) => pnl(row.unrealized_pnl, row.quote) },
];

export function renderMarkets(data: Dashboard): void {
  renderRows("markets", MARKET_COLUMNS, data.markets, "No markets configured.", (row) => ({ "data-market": row.market }));
}

function decisionText(order: OrderRow): string {
  const d = order.decision;
  if (!d) return "—";
  const reasons = d.reasons.filter((r) => r !== "APPROVED").join(", ");
  return d.approved ? "approved" : `denied: ${reasons}`;
}

function intentCell(o: OrderRow): HTMLElement {
  const id = shortId(o.intent_id);
  const intent = o.execution_url
    ? el(
        "a",
        {
          href: o.execution_url,
          target: "_blank",
          rel: "noopener noreferrer",
          title: `Intent ${o.intent_id}: its execution in the Step Functions console`,
        },
        id,
        el("span", { class: "sr-only" }, " (execution in the Step Functions console)"),
      )
    : el("code", { title: o.intent_id }, id);
  return el("td", {}, intent);
}

const ORDER_COLUMNS: Column<OrderRow>[] = [
  { header: "Candle", cell: (o) => el("td", {}, utc(o.candle_time)) },
  { header: "Market", cell: (o) => el("td", {}, o.market.split(":").slice(1, 2).join("") || o.market) },
  { header: "Side", cell: (o) => el("td", {}, el("span", { class: `action ${o.side.toLowerCase()}` }, o.side)) },
  { header: "Status", cell: (o) => el("td", {}, o.status, o.error ? el("small", {}, ` ${o.error}`) : null) },
  { header: "Filled", numeric: true, cell: (o) => el("td", { class: "num" }, amount(o.filled)) },
  { header: "Price", numeric: true, cell: (o) => el("td", { class: "num" }, amount(o.average)) },
  { header: "Fee", numeric: true, cell: (o) => el("td", { class: "num" }, amount(o.fee, o.fee_currency ?? "")) },
  { header: "Risk decision", cell: (o) => el("td", {}, decisionText(o)) },
  { header: "Intent", cell: intentCell },
];

export function renderOrders(data: Dashboard): void {
  renderRows("orders", ORDER_COLUMNS, data.orders, "No orders yet.", (o) => ({ "data-intent": o.intent_id }));
}

/** The tables' headers, drawn once at start: shown before the first answer, and if it fails. */
export function renderTableHeads(): void {
  renderHead("markets", MARKET_COLUMNS);
  renderHead("orders", ORDER_COLUMNS);
}

function list(title: string, entries: [string, string][] | null, empty: string): HTMLElement {
  const items =
    entries === null
      ? [el("li", {}, "not available on this deployment")]
      : entries.length
        ? entries.map(([k, v]) => el("li", {}, el("span", {}, k), " ", el("strong", {}, v)))
        : [el("li", {}, empty)];
  const id = `ops-${title.toLowerCase().replace(/\W+/g, "-")}`;
  return el("div", { class: "card" }, el("h3", { id }, title), el("ul", { "aria-labelledby": id }, ...items));
}

export function deniedTitle(days: number | undefined): string {
  return days ? `Risk denials by reason, last ${days} days` : "Risk denials by reason";
}

export function renderOperations(data: Dashboard): void {
  const denials = data.risk_denials && Object.entries(data.risk_denials).map(([k, v]) => [k, String(v)] as [string, string]);
  const letters = data.dead_letters && Object.entries(data.dead_letters).map(([k, v]) => [k, String(v)] as [string, string]);
  const alarms = data.alarms && data.alarms.map((a) => [a, "ALARM"] as [string, string]);
  const release = data.release && Object.entries(data.release);
  byId("ops").replaceChildren(
    list(deniedTitle(data.risk_denials_days), denials, "none"),
    list("Alarms in ALARM", alarms, "none"),
    list("Dead-letter queues", letters, "none configured"),
    list("Release", release, "unknown"),
  );
}
