// The page's state: what it shows follows from these transitions alone (tests/state.test.ts).
import type { Dashboard } from "./types";

export type View =
  | { kind: "loading" }
  | { kind: "ready"; data: Dashboard; updatedAt: number; error: string | null }
  | { kind: "failed"; error: string };

export type Event =
  | { type: "loaded"; data: Dashboard; at: number }
  | { type: "failed"; error: string };

/** A failed refresh keeps the last data on screen, under a banner saying what failed. */
export function next(view: View, event: Event): View {
  if (event.type === "loaded") {
    return { kind: "ready", data: event.data, updatedAt: event.at, error: null };
  }
  if (view.kind === "ready") return { ...view, error: event.error };
  return { kind: "failed", error: event.error };
}

export function bannerText(view: View): string | null {
  if (view.kind === "failed") return `Cannot load the dashboard: ${view.error}`;
  if (view.kind === "ready" && view.error) {
    return `Refresh failed: ${view.error}. Showing data from the last successful refresh.`;
  }
  return null;
}

export const ACTIONS = {
  halt: { state: "HALTED", verb: "Halt", text: "Stop every new order, in every market." },
  reduce: {
    state: "REDUCING",
    verb: "Reduce",
    text: "Allow only orders that shrink a position.",
  },
  resume: { state: "ACTIVE", verb: "Resume", text: "Trade normally again." },
} as const;

export type Action = keyof typeof ACTIONS;

/** Which actions change something from this state (the others are shown disabled). */
export function allowedActions(state: string | undefined): Action[] {
  return (Object.keys(ACTIONS) as Action[]).filter((a) => ACTIONS[a].state !== state);
}
