// Charts with TradingView's lightweight-charts: the equity curve per quote currency, and each
// market's candles with its fills marked. A chart plots numbers, so prices become floats
// here, for drawing only; every figure a person reads on the page stays a decimal string.
import {
  CandlestickSeries,
  createChart,
  createSeriesMarkers,
  type IChartApi,
  type ISeriesApi,
  type ISeriesMarkersPluginApi,
  LineSeries,
  type SeriesMarker,
  type Time,
  type UTCTimestamp,
} from "lightweight-charts";
import { el } from "./dom";
import type { Dashboard } from "./types";

interface Drawn {
  chart: IChartApi;
  series: ISeriesApi<"Line"> | ISeriesApi<"Candlestick">;
  markers?: ISeriesMarkersPluginApi<Time>;
}

const drawn = new Map<string, Drawn>();

const seconds = (ms: number) => Math.floor(ms / 1000) as UTCTimestamp;

function frame(host: HTMLElement, key: string, title: string, summary: string): HTMLElement {
  const id = `chart-${key.replace(/\W+/g, "-")}`;
  let figure = host.querySelector<HTMLElement>(`figure[data-chart="${CSS.escape(key)}"]`);
  if (!figure) {
    figure = el(
      "figure",
      { "data-chart": key, "aria-labelledby": `${id}-title` },
      el("figcaption", { id: `${id}-title` }, title),
      el("div", { class: "chart", role: "img", "aria-label": summary }),
    );
    host.append(figure);
  }
  figure.querySelector(".chart")!.setAttribute("aria-label", summary);
  return figure.querySelector<HTMLElement>(".chart")!;
}

function chartFor(key: string, box: HTMLElement, kind: "line" | "candles"): Drawn {
  let found = drawn.get(key);
  if (!found) {
    const dark = matchMedia("(prefers-color-scheme: dark)").matches;
    const chart = createChart(box, {
      autoSize: true,
      height: 220,
      layout: {
        background: { color: "transparent" },
        textColor: dark ? "#d6d6d6" : "#1f2328",
        // The logo injects a <style> element, which the CSP forbids; the footer of
        // index.html carries the attribution the licence asks for instead.
        attributionLogo: false,
      },
      grid: { vertLines: { visible: false }, horzLines: { color: dark ? "#333" : "#eee" } },
      timeScale: { timeVisible: true, secondsVisible: false },
      localization: { priceFormatter: (p: number) => p.toPrecision(6) },
    });
    const series =
      kind === "line"
        ? chart.addSeries(LineSeries, { color: "#2962ff", lineWidth: 2 })
        : chart.addSeries(CandlestickSeries, {});
    found = { chart, series };
    drawn.set(key, found);
  }
  return found;
}

export function renderCharts(data: Dashboard, host: HTMLElement): void {
  for (const [quote, points] of Object.entries(data.equity_curve)) {
    const last = points.at(-1)?.value ?? "—";
    const box = frame(host, `equity-${quote}`, `Equity (${quote})`, `Equity curve in ${quote}, now ${last} ${quote}`);
    const { series, chart } = chartFor(`equity-${quote}`, box, "line");
    (series as ISeriesApi<"Line">).setData(
      points.map((p) => ({ time: seconds(p.time), value: Number(p.value) })),
    );
    chart.timeScale().fitContent();
  }
  for (const row of data.markets) {
    const candles = data.candles[row.market] ?? [];
    const fills = data.fills[row.market] ?? [];
    const box = frame(
      host,
      row.market,
      `${row.symbol} ${row.timeframe}`,
      `${row.symbol} candles, ${fills.length} fills marked`,
    );
    const found = chartFor(row.market, box, "candles");
    (found.series as ISeriesApi<"Candlestick">).setData(
      candles.map((c) => ({
        time: seconds(c.time),
        open: Number(c.open),
        high: Number(c.high),
        low: Number(c.low),
        close: Number(c.close),
      })),
    );
    const markers: SeriesMarker<Time>[] = fills.map((f) => {
      const buy = f.side.toLowerCase() === "buy";
      return {
        time: seconds(f.time),
        position: buy ? "belowBar" : "aboveBar",
        shape: buy ? "arrowUp" : "arrowDown",
        color: buy ? "#1a7f37" : "#cf222e",
      };
    });
    if (found.markers) found.markers.setMarkers(markers);
    else found.markers = createSeriesMarkers(found.series, markers);
    found.chart.timeScale().fitContent();
  }
}
