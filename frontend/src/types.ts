// What GET /api/dashboard answers (src/tickstep/usecases/dashboard.py): amounts are strings.

export type TradingState = "ACTIVE" | "REDUCING" | "HALTED";

export interface StateRecord {
  state: TradingState;
  reason: string;
  changed_at: number;
  changed_by: string;
}

export interface Signal {
  action: string;
  reason: string;
  candle_time: number;
  close: string;
  indicators: Record<string, number>;
}

export interface MarketRow {
  market: string;
  symbol: string;
  timeframe: string;
  quote: string;
  last_candle_close: number | null;
  age_ms: number | null;
  stale: boolean;
  last_signal: Signal | null;
  position: string;
  average_price: string | null;
  price: string | null;
  realized_pnl: string;
  unrealized_pnl: string;
}

export interface CandlePoint {
  time: number;
  open: string;
  high: string;
  low: string;
  close: string;
}

export interface FillPoint {
  time: number;
  side: string; // "buy" or "sell"
  amount: string;
  price: string;
}

export interface OrderRow {
  intent_id: string;
  market: string;
  side: string;
  status: string;
  candle_time: number;
  amount: string | null;
  filled: string;
  average: string | null;
  fee: string;
  fee_currency: string | null;
  error: string | null;
  decision: { approved: boolean; reasons: string[]; detail: string } | null;
  execution_url: string | null;
}

export interface Dashboard {
  generated_at: number;
  mode: string;
  trading_state: StateRecord;
  markets: MarketRow[];
  balances: Record<string, string>;
  equity: Record<string, string>;
  pnl: Record<string, { realized: string; unrealized: string }>;
  equity_curve: Record<string, { time: number; value: string }[]>;
  candles: Record<string, CandlePoint[]>;
  fills: Record<string, FillPoint[]>;
  orders: OrderRow[];
  order_count: number;
  fill_count: number;
  fees: string;
  risk_denials: Record<string, number> | null;
  /** The UTC days risk_denials covers, today included (absent from older APIs). */
  risk_denials_days?: number;
  alarms: string[] | null;
  dead_letters: Record<string, number> | null;
  release: Record<string, string> | null;
}
