// Amounts arrive as decimal strings (Python's Decimal) and are shown as such: digits are
// moved, never computed, so nothing is rounded through a float.

const DECIMAL = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/;

/** "1E-7" -> "0.0000001", "0.001790" -> "0.00179", "-0" -> "0"; not a number: as given. */
export function plainDecimal(text: string): string {
  const m = DECIMAL.exec(text.trim());
  if (!m || (m[2] === "" && (m[3] ?? "") === "")) return text;
  const sign = m[1] === "-" ? "-" : "";
  let digits = m[2] + (m[3] ?? "");
  let point = m[2].length + Number(m[4] ?? 0);
  if (point <= 0) {
    digits = "0".repeat(1 - point) + digits;
    point = 1;
  } else if (point > digits.length) {
    digits = digits + "0".repeat(point - digits.length);
  }
  const whole = digits.slice(0, point).replace(/^0+(?=\d)/, "") || "0";
  const fraction = digits.slice(point).replace(/0+$/, "");
  const body = fraction ? `${whole}.${fraction}` : whole;
  return body === "0" ? "0" : sign + body;
}

/** -1, 0 or 1: the sign of a decimal string, read from its digits. */
export function signOf(text: string | null | undefined): -1 | 0 | 1 {
  if (text == null) return 0;
  const plain = plainDecimal(text);
  if (plain === "0" || !DECIMAL.test(plain)) return 0;
  return plain.startsWith("-") ? -1 : 1;
}

/** An amount with its currency, a "+" on gains when asked (PnL). */
export function amount(text: string | null | undefined, currency = "", signed = false): string {
  if (text == null) return "—";
  const plain = plainDecimal(text);
  const shown = signed && signOf(plain) > 0 ? `+${plain}` : plain.replace(/^-/, "−");
  return currency ? `${shown} ${currency}` : shown;
}

/** UTC time of an epoch in ms: "2018-01-10 06:25 UTC". */
export function utc(ms: number | null | undefined): string {
  if (ms == null) return "—";
  return `${new Date(ms).toISOString().slice(0, 16).replace("T", " ")} UTC`;
}

/** "45 s", "12 min", "3 h 5 min", "2 d 4 h": how old something is. */
export function age(ms: number | null | undefined): string {
  if (ms == null) return "—";
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s} s`;
  const min = Math.floor(s / 60);
  if (min < 60) return `${min} min`;
  const h = Math.floor(min / 60);
  if (h < 48) return min % 60 ? `${h} h ${min % 60} min` : `${h} h`;
  const d = Math.floor(h / 24);
  return h % 24 ? `${d} d ${h % 24} h` : `${d} d`;
}

/** The first and last characters of a long id: "3f9a…c21e". */
export function shortId(id: string, keep = 6): string {
  return id.length <= keep * 2 + 1 ? id : `${id.slice(0, keep)}…${id.slice(-keep)}`;
}
